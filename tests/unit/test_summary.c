/*
 * The "already tried" summary (relay/desk/summary.h): a ticket's timeline events and evidence
 * rows in, a summary out, as docs/desk.md "Escalation" says — the fixture of 7 commands,
 * 2 runbooks, 1 shell and 2 diagnostics gives exactly those 12 rows, the canonical text is
 * stable and hashed, and what others wrote reaches the readable form only escaped.
 */
#include "tl_test.h"

#include "proto/hash.h"
#include "relay/desk/summary.h"

#include <stdlib.h>

#define H(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c
/* 64 hex digits made of one character repeated. */
#define HASH(c) H(c c)

/* A growing list of timeline events and evidence rows, as the store would read them. */
struct ticket {
    tl_ticket_event_row_t events[700];
    size_t event_count;
    tl_evidence_row_t evidence[64];
    size_t evidence_count;
    char details[700][512];
    char hashes[64][65];
    char names[64][128];
};

static int64_t clock_ms = 1764763200000; /* 2025-12-03 12:00:00Z */

static void event(struct ticket *t, const char *actor, const char *kind, const char *details)
{
    size_t i = t->event_count++;
    assert_true(i < sizeof t->events / sizeof t->events[0]);
    snprintf(t->details[i], sizeof t->details[i], "%s", details);
    t->events[i] = (tl_ticket_event_row_t){1, clock_ms += 1000, actor, kind, t->details[i]};
}

static void evidence(struct ticket *t, const char *hash, const char *kind, const char *name)
{
    size_t i = t->evidence_count++;
    assert_true(i < sizeof t->evidence / sizeof t->evidence[0]);
    snprintf(t->hashes[i], sizeof t->hashes[i], "%s", hash);
    snprintf(t->names[i], sizeof t->names[i], "%s", name);
    t->evidence[i] = (tl_evidence_row_t){1, t->hashes[i], kind, t->names[i], 1234, clock_ms};
}

static tl_summary_t *build(const struct ticket *t, const char *title, const char *description,
                           const tl_summary_move_t *move)
{
    tl_summary_input_t input = {"T-4",          title,       description,      t->events,
                                t->event_count, t->evidence, t->evidence_count};
    tl_summary_t *summary = NULL;
    TL_ASSERT_OK(tl_summary_build(&input, move, &summary));
    assert_non_null(summary);
    return summary;
}

/* A run on the machine as the sessions record it: its transcript, then its end. */
static void command(struct ticket *t, const char *hash, const char *name, const char *argv_json,
                    int exit_status)
{
    char details[512];
    evidence(t, hash, "command", name);
    snprintf(details, sizeof details, "{\"sha256\":\"%s\",\"kind\":\"command\",\"name\":\"%s\"}",
             hash, name);
    event(t, "tech:bob", "evidence.added", details);
    snprintf(details, sizeof details,
             "{\"type\":\"exec\",\"device\":\"D-1\",\"grant\":\"G-1\",\"argv\":%s,"
             "\"exit_status\":%d,\"duration_ms\":17,\"evidence_name\":\"%s\"}",
             argv_json, exit_status, name);
    event(t, "tech:bob", "exec.finished", details);
}

/*
 * The fixture: a ticket sent with diagnostics, 7 commands, 2 runbooks, a shell, a
 * second diagnostics run, and around them what does not count: consent, an observer, the diag
 * session's own end, a take, notes and the user's words.
 */
static void fixture(struct ticket *t)
{
    char hash[65], name[128];
    event(t, "agent:D-1", "ticket.created", "{\"title\":\"printer offline\",\"tier\":1}");
    evidence(t, HASH("a"), "diagnostics", "diagnostics.json");
    event(t, "agent:D-1", "evidence.added",
          "{\"sha256\":\"" HASH("a") "\",\"kind\":\"diagnostics\"}");
    event(t, "tech:alice", "ticket.taken", "{\"assignee\":\"alice\",\"previous\":\"-\"}");
    event(t, "tech:bob", "consent.requested", "{\"device\":\"D-1\",\"scopes\":[\"exec\"]}");
    event(t, "tech:bob", "consent.granted", "{\"grant\":\"G-1\"}");
    for (int i = 0; i < 7; i++) {
        snprintf(hash, sizeof hash, "%064d", i + 1);
        snprintf(name, sizeof name, "command-systemctl-status-%d.json", i);
        char argv[128];
        snprintf(argv, sizeof argv, "[\"systemctl\",\"status\",\"unit-%d\"]", i);
        command(t, hash, name, argv, i == 3 ? 3 : 0);
    }
    evidence(t, HASH("b"), "runbook", "runbook-restart-cups.json");
    event(t, "tech:alice", "fix.finished",
          "{\"type\":\"runbook\",\"runbook\":\"restart-service\",\"args\":{\"SERVICE\":\"cups\"},"
          "\"exit_status\":0,\"evidence_name\":\"runbook-restart-cups.json\"}");
    evidence(t, HASH("c"), "runbook", "runbook-clear-queue.json");
    event(t, "tech:alice", "fix.finished",
          "{\"type\":\"runbook\",\"runbook\":\"clear-queue\",\"args\":{},"
          "\"exit_signal\":\"TERM\",\"ended_by\":\"machine\","
          "\"evidence_name\":\"runbook-clear-queue.json\"}");
    evidence(t, HASH("d"), "recording", "recording-shell.cast.gz");
    event(t, "tech:bob", "session.ended",
          "{\"type\":\"shell\",\"exit_status\":0,\"duration_ms\":312000,\"recording\":\"" HASH(
              "d") "\",\"evidence_name\":\"recording-shell.cast.gz\"}");
    /* An observer watched; it did nothing on the machine. */
    evidence(t, HASH("e"), "recording", "recording-observe.cast.gz");
    event(t, "tech:alice", "session.ended",
          "{\"type\":\"observe\",\"recording\":\"" HASH("e") "\"}");
    evidence(t, HASH("f"), "diagnostics", "diagnostics-second.json");
    event(t, "tech:bob", "evidence.added",
          "{\"sha256\":\"" HASH("f") "\",\"kind\":\"diagnostics\"}");
    event(t, "tech:bob", "session.ended",
          "{\"type\":\"diag\",\"exit_status\":0,\"evidence_name\":\"diagnostics-second.json\"}");
    event(t, "tech:alice", "note", "{\"text\":\"cleared the queue, still offline\"}");
    event(t, "agent:D-1", "user.note", "{\"text\":\"it worked yesterday\"}");
}

static void test_fixture_gives_exactly_the_twelve_rows(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    fixture(t);
    tl_summary_t *summary = build(t, "printer offline", "since the update", NULL);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_DIAGNOSTICS), 2);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_COMMANDS), 7);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_RUNBOOKS), 2);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_SHELLS), 1);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_SELF_HELP), 0);
    assert_int_equal(tl_summary_tried(summary), 12);
    /* Notes and the user's words in their own sections. */
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_NOTES), 1);
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_USER_NOTES), 1);
    tl_summary_free(summary);
    free(t);
}

static void test_rows_say_who_when_how_it_ended_and_which_evidence(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    fixture(t);
    tl_summary_t *summary = build(t, "printer offline", "", NULL);
    tl_summary_row_t row;

    /* Diagnostics: the one sent with the ticket, and the technician's run. */
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_DIAGNOSTICS, 0, &row));
    assert_string_equal(row.by, "agent:D-1");
    assert_string_equal(row.via, "ticket");
    assert_string_equal(row.sha256, HASH("a"));
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_DIAGNOSTICS, 1, &row));
    assert_string_equal(row.by, "tech:bob");
    assert_string_equal(row.via, "diag");
    assert_string_equal(row.evidence_name, "diagnostics-second.json");

    /* Commands, in order, each with its exit status and its own transcript's hash. */
    for (size_t i = 0; i < 7; i++) {
        char hash[65];
        snprintf(hash, sizeof hash, "%064zu", i + 1);
        TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_COMMANDS, i, &row));
        assert_string_equal(row.by, "tech:bob");
        assert_true(row.has_exit_status);
        assert_int_equal(row.exit_status, i == 3 ? 3 : 0);
        assert_string_equal(row.sha256, hash);
        assert_string_equal(json_string_value(json_array_get(row.argv, 0)), "systemctl");
    }
    /* Runbooks: the arguments, a signal, who ended it. */
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_RUNBOOKS, 0, &row));
    assert_string_equal(row.runbook, "restart-service");
    assert_string_equal(json_string_value(json_object_get(row.args, "SERVICE")), "cups");
    assert_string_equal(row.sha256, HASH("b"));
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_RUNBOOKS, 1, &row));
    assert_false(row.has_exit_status);
    assert_string_equal(row.exit_signal, "TERM");
    assert_string_equal(row.ended_by, "machine");
    /* The shell, with its recording; the observer is not there. */
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_SHELLS, 0, &row));
    assert_string_equal(row.sha256, HASH("d"));
    assert_int_equal(row.duration_ms, 312000);
    assert_int_equal(tl_summary_row(summary, TL_SUMMARY_SHELLS, 1, &row), TL_EINVAL);
    /* Notes and the user's own words. */
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_NOTES, 0, &row));
    assert_string_equal(row.by, "tech:alice");
    assert_string_equal(row.text, "cleared the queue, still offline");
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_USER_NOTES, 0, &row));
    assert_string_equal(row.text, "it worked yesterday");
    tl_summary_free(summary);
    free(t);
}

static void test_self_help_shown_and_applied_count_as_tried(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    event(t, "agent:D-1", "selfhelp.shown",
          "{\"article\":\"kb:printer-offline\",\"title\":\"Printer says offline\"}");
    event(t, "agent:D-1", "selfhelp.applied",
          "{\"article\":\"kb:printer-offline\",\"title\":\"Printer says offline\","
          "\"outcome\":\"still offline\"}");
    tl_summary_t *summary = build(t, "printer offline", NULL, NULL);
    tl_summary_row_t row;
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_SELF_HELP), 2);
    assert_int_equal(tl_summary_tried(summary), 2);
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_SELF_HELP, 1, &row));
    assert_string_equal(row.via, "applied");
    assert_string_equal(row.article, "kb:printer-offline");
    assert_string_equal(row.outcome, "still offline");
    tl_summary_free(summary);
    free(t);
}

/* The canonical text: sorted members, only ASCII, no spaces; its hash is the text's. */
static void test_canonical_text_is_stable_and_hashed(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    fixture(t);
    tl_summary_move_t move = {clock_ms + 5000, "tech:alice", 1, 2, "needs a shell, caf\xc3\xa9"};
    tl_summary_t *first = build(t, "printer offline", "line one\nline two", &move);
    tl_summary_t *again = build(t, "printer offline", "line one\nline two", &move);
    char *text = NULL, *text2 = NULL, hash[TL_SHA256_HEX_LEN], hash2[TL_SHA256_HEX_LEN],
         expected[TL_SHA256_HEX_LEN];
    size_t len = 0, len2 = 0;
    TL_ASSERT_OK(tl_summary_canonical(first, &text, &len, hash));
    TL_ASSERT_OK(tl_summary_canonical(again, &text2, &len2, hash2));
    assert_int_equal(len, len2);
    assert_memory_equal(text, text2, len);
    TL_ASSERT_OK(tl_sha256_hex(text, len, expected));
    assert_string_equal(hash, expected);
    for (size_t i = 0; i < len; i++)
        assert_true(text[i] >= 0x20 && text[i] < 0x7f);
    assert_non_null(strstr(text, "caf\\u00E9"));
    assert_non_null(strstr(text, "line one\\nline two"));
    const char *start = "{\"commands\":[{\"argv\":[\"systemctl\",";
    assert_int_equal(strncmp(text, start, strlen(start)), 0);
    assert_non_null(strstr(text, "\"move\":{\"by\":\"tech:alice\",\"from_tier\":1,\"reason\":"));
    assert_non_null(strstr(text, "\"tried\":12,\"user_notes\":"));
    assert_null(strchr(text, '\n'));
    assert_null(strstr(text, "\": "));

    /* Read back from its text, it is the same summary, byte for byte. */
    tl_summary_t *stored = NULL;
    char why[128];
    TL_ASSERT_OK(tl_summary_from_text(text, len, &stored, why, sizeof why));
    char *text3 = NULL, hash3[TL_SHA256_HEX_LEN];
    size_t len3 = 0;
    TL_ASSERT_OK(tl_summary_canonical(stored, &text3, &len3, hash3));
    assert_string_equal(hash3, hash);
    assert_int_equal(tl_summary_tried(stored), 12);

    /* A later event makes another summary, another hash. */
    event(t, "tech:carol", "note", "{\"text\":\"one more\"}");
    tl_summary_t *later = build(t, "printer offline", "line one\nline two", &move);
    char *text4 = NULL, hash4[TL_SHA256_HEX_LEN];
    size_t len4 = 0;
    TL_ASSERT_OK(tl_summary_canonical(later, &text4, &len4, hash4));
    assert_string_not_equal(hash4, hash);
    free(text);
    free(text2);
    free(text3);
    free(text4);
    tl_summary_free(first);
    tl_summary_free(again);
    tl_summary_free(stored);
    tl_summary_free(later);
    free(t);
}

static char *render(const tl_summary_t *summary, const char *sha256)
{
    tl_buf_t *out = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_summary_render(summary, sha256, out));
    char *text = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_buf_take_string(out, &text, &len));
    tl_buf_free(out);
    return text;
}

static void test_readable_form_lists_every_section_and_the_move(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    fixture(t);
    tl_summary_move_t move = {1764770400000, "tech:alice", 1, 2, "needs a shell"};
    tl_summary_t *summary = build(t, "printer offline", "since the update", &move);
    char *text = render(summary, HASH("9"));
    assert_non_null(strstr(text, "Escalated from tier 1 to tier 2 by alice at 2025-12-03 "
                                 "14:00:00Z: needs a shell\n"));
    assert_non_null(strstr(text, "Tried before this escalation: 12 (summary sha256:" HASH("9")));
    assert_non_null(strstr(text, "  Diagnostics (2):\n"));
    assert_non_null(strstr(text, "  Commands (7):\n"));
    assert_non_null(strstr(text, "exit 3  transcript 000000000000  systemctl status unit-3\n"));
    assert_non_null(strstr(text, "  Runbooks (2):\n"));
    assert_non_null(strstr(text, "restart-service SERVICE=cups\n"));
    assert_non_null(strstr(text, "signal TERM  ended by machine"));
    assert_non_null(strstr(text, "  Shell sessions (1):\n"));
    assert_non_null(strstr(text, "5m12s  recording dddddddddddd"));
    /* Self-help's rows come first: what the user tried before anyone else. */
    assert_non_null(strstr(text, "(summary sha256:" HASH("9") ")\n  Self-help: none\n"
                                                              "  Diagnostics (2):\n"));
    assert_non_null(strstr(text, "alice: cleared the queue, still offline\n"));
    assert_non_null(
        strstr(text, "    title: printer offline\n    description: since the update\n"));
    assert_non_null(strstr(text, "the user wrote: it worked yesterday\n"));
    /* Never the raw JSON. */
    assert_null(strstr(text, "{\""));
    free(text);
    tl_summary_free(summary);

    /* Giving a ticket back says so. */
    tl_summary_move_t back = {1764770400000, "tech:carol", 3, 2, "not a tier-3 matter"};
    summary = build(t, "printer offline", NULL, &back);
    text = render(summary, NULL);
    assert_non_null(strstr(text, "De-escalated from tier 3 to tier 2 by carol"));
    free(text);
    tl_summary_free(summary);
    free(t);
}

/* Terminal escapes and line breaks from others never reach the terminal raw. */
static void test_text_from_others_is_shown_escaped(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    event(t, "tech:alice", "note", "{\"text\":\"\\u001b]0;owned\\u0007 \\u009b2J done\"}");
    command(t, HASH("1"), "command-x.json", "[\"echo\",\"a b\",\"it's\",\"\\u001b[2J\"]", 0);
    event(t, "agent:D-1", "user.note", "{\"text\":\"line\\nbreak\\r\"}");
    tl_summary_move_t move = {clock_ms, "tech:alice", 1, 2, "why\x1b[31m"};
    tl_summary_t *summary = build(t, "title \x1b[2J", "desc\n\x1b]0;x\a", &move);
    char *text = render(summary, NULL);
    assert_null(strchr(text, 0x1b));
    assert_null(strchr(text, 0x07));
    assert_null(strstr(text, "\xc2\x9b"));
    assert_non_null(strstr(text, "\\x1b]0;owned\\x07 \\u009b2J done"));
    assert_non_null(strstr(text, "echo 'a b' 'it'\\''s' '\\x1b[2J'"));
    assert_non_null(strstr(text, "line\\nbreak\\r\n"));
    assert_non_null(strstr(text, "why\\x1b[31m\n"));
    assert_non_null(strstr(text, "title: title \\x1b[2J\n"));
    assert_non_null(strstr(text, "description: desc\\n\\x1b]0;x\\x07\n"));
    free(text);
    tl_summary_free(summary);
    free(t);
}

/* A ticket with more than a section keeps: the latest, and a count of the rest. */
static void test_long_sections_keep_the_latest_and_count_the_rest(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    for (int i = 0; i < TL_SUMMARY_SECTION_MAX + 3; i++) {
        char details[64];
        snprintf(details, sizeof details, "{\"text\":\"note %d\"}", i);
        event(t, "tech:alice", "note", details);
    }
    tl_summary_t *summary = build(t, "busy", NULL, NULL);
    tl_summary_row_t row;
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_NOTES), TL_SUMMARY_SECTION_MAX);
    assert_int_equal(tl_summary_omitted(summary, TL_SUMMARY_NOTES), 3);
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_NOTES, 0, &row));
    assert_string_equal(row.text, "note 3");
    char *text = render(summary, NULL);
    assert_non_null(strstr(text, "  Notes (503):\n    (3 earlier, not kept in the summary)\n"));
    free(text);
    tl_summary_free(summary);
    free(t);
}

/* What the records hold that is not what a summary reads is left out, never guessed. */
static void test_odd_records_are_read_as_absent(void **state)
{
    (void)state;
    struct ticket *t = calloc(1, sizeof *t);
    event(t, "tech:bob", "exec.finished", "not json");
    event(t, "tech:bob", "exec.finished",
          "{\"argv\":\"echo\",\"exit_status\":\"0\",\"evidence_name\":\"nowhere.json\"}");
    event(t, "tech:bob", "session.ended", "{\"type\":\"shell\",\"recording\":\"abc\"}");
    tl_summary_t *summary = build(t, "odd", NULL, NULL);
    tl_summary_row_t row;
    assert_int_equal(tl_summary_count(summary, TL_SUMMARY_COMMANDS), 2);
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_COMMANDS, 1, &row));
    assert_null(row.argv);
    assert_false(row.has_exit_status);
    assert_null(row.sha256);
    TL_ASSERT_OK(tl_summary_row(summary, TL_SUMMARY_SHELLS, 0, &row));
    assert_null(row.sha256);
    char *text = render(summary, NULL);
    assert_non_null(strstr(text, "no exit status  no transcript  -\n"));
    free(text);
    tl_summary_free(summary);
    free(t);
}

static void test_bad_input_and_bad_stored_text_are_refused(void **state)
{
    (void)state;
    tl_summary_t *summary = NULL;
    tl_summary_input_t no_title = {"T-1", NULL, NULL, NULL, 0, NULL, 0};
    assert_int_equal(tl_summary_build(&no_title, NULL, &summary), TL_EINVAL);
    tl_summary_input_t no_events = {"T-1", "x", NULL, NULL, 3, NULL, 0};
    assert_int_equal(tl_summary_build(&no_events, NULL, &summary), TL_EINVAL);
    assert_null(summary);
    char why[160] = "";
    const char *bad[][2] = {
        {"{\"version\":1", "the summary is not JSON"},
        {"[1]", "the summary is not a JSON object"},
        {"{\"version\":2}", "the summary's version is not 1"},
        {"{\"version\":1,\"commands\":[]}", "the summary has no \"self_help\" list"},
        {"{\"version\":1,\"version\":1}", "the summary is not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            tl_summary_from_text(bad[i][0], strlen(bad[i][0]), &summary, why, sizeof why),
            TL_EINVAL);
        if (strncmp(why, bad[i][1], strlen(bad[i][1])) != 0)
            fail_msg("%s: expected \"%s\", got \"%s\"", bad[i][0], bad[i][1], why);
        assert_null(summary);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_gives_exactly_the_twelve_rows),
        cmocka_unit_test(test_rows_say_who_when_how_it_ended_and_which_evidence),
        cmocka_unit_test(test_self_help_shown_and_applied_count_as_tried),
        cmocka_unit_test(test_canonical_text_is_stable_and_hashed),
        cmocka_unit_test(test_readable_form_lists_every_section_and_the_move),
        cmocka_unit_test(test_text_from_others_is_shown_escaped),
        cmocka_unit_test(test_long_sections_keep_the_latest_and_count_the_rest),
        cmocka_unit_test(test_odd_records_are_read_as_absent),
        cmocka_unit_test(test_bad_input_and_bad_stored_text_are_refused),
    };
    return tl_test_run("summary", tests, sizeof tests / sizeof tests[0], argc, argv);
}
