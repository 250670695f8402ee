/*
 * What the user is told of their tickets (agent/ticket_news.h): a note not seen before, a status
 * they must hear of, and nothing twice; the words for each status; the texts escaped.
 */
#include "tl_test.h"

#include "agent/ticket_news.h"
#include "proto/text.h"

#include <stdlib.h>

static tl_ticket_summary_t ticket(const char *id, const char *status, const char *note,
                                  int64_t note_ms)
{
    tl_ticket_summary_t t = {0};
    snprintf(t.ticket, sizeof t.ticket, "%s", id);
    snprintf(t.title, sizeof t.title, "printer offline");
    snprintf(t.status, sizeof t.status, "%s", status);
    t.updated_ms = 1000;
    if (note != NULL) {
        t.has_note = 1;
        snprintf(t.note, sizeof t.note, "%s", note);
        snprintf(t.note_by, sizeof t.note_by, "alice");
        t.note_ms = note_ms;
    }
    return t;
}

static void test_the_first_list_only_learns_and_later_ones_announce_changes(void **state)
{
    (void)state;
    tl_ticket_news_t *news = tl_ticket_news_new();
    tl_ticket_summary_t items[3] = {ticket("T-1", "waiting-user", "switch it on", 100),
                                    ticket("T-2", "open", NULL, 0),
                                    ticket("T-3", "resolved", "done", 50)};
    unsigned what[3] = {9, 9, 9};
    tl_ticket_news_list(news, items, 3, what);
    assert_int_equal(what[0] | what[1] | what[2], 0);
    /* Unchanged: still nothing. */
    tl_ticket_news_list(news, items, 3, what);
    assert_int_equal(what[0] | what[1] | what[2], 0);
    /* Meanwhile: a note on T-2, T-1 resolved with a new note, T-3 unchanged. */
    items[0] = ticket("T-1", "resolved", "it was off", 200);
    items[1] = ticket("T-2", "open", "looking into it", 150);
    tl_ticket_news_list(news, items, 3, what);
    assert_int_equal(what[0], TL_NEWS_NOTE | TL_NEWS_STATUS);
    assert_int_equal(what[1], TL_NEWS_NOTE);
    assert_int_equal(what[2], 0);
    tl_ticket_news_free(news);
}

static void test_updates_are_news_once_and_a_take_is_not_news(void **state)
{
    (void)state;
    tl_ticket_news_t *news = tl_ticket_news_new();
    tl_ticket_summary_t t = ticket("T-1", "new", NULL, 0);
    unsigned what;
    tl_ticket_news_list(news, &t, 1, &what);
    /* A technician takes it: new -> open is not news. */
    t = ticket("T-1", "open", NULL, 0);
    assert_int_equal(tl_ticket_news_update(news, &t), 0);
    t = ticket("T-1", "open", "on it", 300);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_NOTE);
    /* The same notice again (a repeated event of the ticket): nothing new. */
    assert_int_equal(tl_ticket_news_update(news, &t), 0);
    /* Same time, other words: another note. */
    t = ticket("T-1", "open", "on it, really", 300);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_NOTE);
    t = ticket("T-1", "waiting-user", "on it, really", 300);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_STATUS);
    t = ticket("T-1", "waiting-vendor", "on it, really", 300);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_STATUS);
    /* A status this agent does not know is news, shown as it came. */
    t = ticket("T-1", "escalated-to-mars", "on it, really", 300);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_STATUS);
    /* A ticket first heard of in a notice: its note and a status that matters are news. */
    t = ticket("T-9", "closed", "duplicate of T-1", 400);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_NOTE | TL_NEWS_STATUS);
    tl_ticket_news_free(news);
}

static void test_a_forgotten_ticket_is_news_again(void **state)
{
    (void)state;
    tl_ticket_news_t *news = tl_ticket_news_new();
    tl_ticket_summary_t t = ticket("T-1", "open", "first", 10);
    unsigned what;
    tl_ticket_news_list(news, NULL, 0, &what);
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_NOTE);
    /* As many others as it remembers push the oldest out; memory stays bounded. */
    for (int i = 0; i < TL_TICKET_NEWS_KNOWN; i++) {
        char id[16];
        snprintf(id, sizeof id, "T-%d", i + 100);
        tl_ticket_summary_t other = ticket(id, "open", "x", 10);
        tl_ticket_news_update(news, &other);
    }
    assert_int_equal(tl_ticket_news_update(news, &t), TL_NEWS_NOTE);
    tl_ticket_news_free(news);
}

static void test_statuses_have_words(void **state)
{
    (void)state;
    assert_string_equal(tl_ticket_status_words("waiting-user"), "waiting for you");
    assert_string_equal(tl_ticket_status_words("resolved"), "resolved");
    assert_string_equal(tl_ticket_status_words("new"), "new: waiting for a technician");
    assert_non_null(tl_ticket_status_words("waiting-vendor"));
    assert_non_null(tl_ticket_status_words("reopened"));
    assert_non_null(tl_ticket_status_words("closed"));
    assert_non_null(tl_ticket_status_words("open"));
    assert_null(tl_ticket_status_words("Resolved"));
    assert_null(tl_ticket_status_words(NULL));
}

static void test_a_notice_is_escaped_and_says_what_happened(void **state)
{
    (void)state;
    char summary[256], body[2048], hint[128];
    tl_ticket_summary_t t = ticket("T-4", "waiting-user", "line one\nline two \x1b[2J", 10);
    snprintf(t.title, sizeof t.title, "\x1b]0;owned\x07 printer");
    snprintf(t.note_by, sizeof t.note_by, "bob");
    tl_ticket_news_text(&t, TL_NEWS_STATUS | TL_NEWS_NOTE, summary, sizeof summary, body,
                        sizeof body, hint, sizeof hint);
    assert_string_equal(summary, "T-4 is waiting for you");
    assert_string_equal(body, "\"\\x1b]0;owned\\x07 printer\"\nbob: line one\nline two \\x1b[2J");
    assert_string_equal(hint, "See: tierline-agent tickets");
    tl_ticket_news_text(&t, TL_NEWS_NOTE, summary, sizeof summary, body, sizeof body, hint,
                        sizeof hint);
    assert_string_equal(summary, "new note on T-4");
    /* A status the agent does not know, escaped in the summary. */
    snprintf(t.status, sizeof t.status, "on-mars");
    tl_ticket_news_text(&t, TL_NEWS_STATUS, summary, sizeof summary, body, sizeof body, hint,
                        sizeof hint);
    assert_string_equal(summary, "T-4 is on-mars");
    /* A small buffer clips whole characters, never inside one. */
    char small[40];
    snprintf(t.note, sizeof t.note, "%s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    tl_ticket_news_text(&t, TL_NEWS_NOTE, summary, sizeof summary, small, sizeof small, hint,
                        sizeof hint);
    assert_true(tl_text_utf8_valid(small, strlen(small)));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_the_first_list_only_learns_and_later_ones_announce_changes),
    cmocka_unit_test(test_updates_are_news_once_and_a_take_is_not_news),
    cmocka_unit_test(test_a_forgotten_ticket_is_news_again),
    cmocka_unit_test(test_statuses_have_words),
    cmocka_unit_test(test_a_notice_is_escaped_and_says_what_happened),
};

TL_TEST_MAIN(tests)
