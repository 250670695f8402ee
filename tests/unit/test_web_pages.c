/* The web view's pages (relay/web_pages.h): hostile text from every field stays text. */
#include "tl_test.h"

#include "proto/buf.h"
#include "relay/web_pages.h"

#include <stdlib.h>

#define HOSTILE "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&\x1b[2J"

static tl_technician_t who(void)
{
    tl_technician_t tech = {0};
    snprintf(tech.name, sizeof tech.name, "%s", "<b>mallory</b>");
    snprintf(tech.role, sizeof tech.role, "%s", "tier1");
    return tech;
}

/* The page as a string; fails the test on an error. */
static char *page_text(tl_buf_t *buf)
{
    TL_ASSERT_OK(tl_buf_put_u8(buf, 0));
    char *out = strdup((const char *)tl_buf_data(buf));
    tl_buf_free(buf);
    return out;
}

/* No markup of the hostile text's, no raw control byte, and its text is there escaped. */
static void assert_safe(const char *page)
{
    assert_null(strstr(page, "<script>alert"));
    assert_null(strstr(page, "<img"));
    assert_null(strstr(page, "<b>mallory"));
    assert_non_null(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    for (const char *p = page; *p != '\0'; p++)
        assert_false((unsigned char)*p < 0x20 && *p != '\n');
}

static void test_the_queues_escape_every_field(void **state)
{
    (void)state;
    json_t *answer =
        json_pack("{s:[], s:[{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:{s:{s:s, s:b}}}]}", "notices",
                  "tickets", "id", "T-1", "title", HOSTILE, "tier", 1, "status", "new", "severity",
                  "S3", "assignee", HOSTILE, "hostname", HOSTILE, "sla", "first_response", "state",
                  "<x>breached", "warning", 1);
    tl_technician_t tech = who();
    tl_buf_t *buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_tickets(buf, &tech, answer, HOSTILE));
    char *page = page_text(buf);
    assert_safe(page);
    assert_non_null(strstr(page, "class=\"sla sla--x-breached sla-warning\""));
    free(page);
    json_decref(answer);
}

static void test_a_ticket_escapes_its_timeline_and_evidence(void **state)
{
    (void)state;
    json_t *ticket = json_pack(
        "{s:s, s:s, s:s, s:[{s:i, s:s, s:s, s:{s:s, s:s, s:s}}], s:[{s:s, s:s, s:s, s:i}], "
        "s:{s:s}}",
        "id", "T-7", "title", HOSTILE, "description", HOSTILE "\nsecond line", "events", "time",
        1000, "actor", HOSTILE, "kind", HOSTILE, "details", "grant", "\"><script>x</script>",
        "recording", "ab", "note", HOSTILE, "evidence", "hash", "\"><img src=y>", "kind", HOSTILE,
        "name", HOSTILE, "size", 3, "escalation", "reason", HOSTILE);
    tl_technician_t tech = who();
    tl_buf_t *buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_ticket(buf, &tech, ticket));
    char *page = page_text(buf);
    assert_safe(page);
    assert_non_null(strstr(page, "href=\"/replay/&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
    assert_non_null(strstr(page, "second line"));
    free(page);
    json_decref(ticket);
}

static void test_audit_report_replay_and_messages_escape_too(void **state)
{
    (void)state;
    tl_technician_t tech = who();
    json_t *search =
        json_pack("{s:[{s:i, s:s, s:s, s:s, s:{s:s}}]}", "entries", "index", 4, "actor", HOSTILE,
                  "action", HOSTILE, "subject", HOSTILE, "details", "x", HOSTILE);
    json_t *verify = json_pack("{s:b, s:s}", "ok", 1, "note", HOSTILE);
    tl_buf_t *buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_audit(buf, &tech, search, verify));
    char *page = page_text(buf);
    assert_safe(page);
    assert_non_null(strstr(page, "verify-ok"));
    free(page);
    json_t *report =
        json_pack("{s:{s:i, s:i}, s:[{s:i, s:i, s:i, s:i}, {s:i, s:i}], s:{s:s}}", "period",
                  "since_ms", 0, "until_ms", 1000, "rows", "tier", 1, "opened", 4, "resolved", 2,
                  "escalated", 1, "tier", 99, "opened", 5, "total", HOSTILE, HOSTILE);
    buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_report(buf, &tech, report));
    page = page_text(buf);
    assert_safe(page);
    assert_non_null(strstr(page, "<svg id=\"chart-tiers\""));
    assert_non_null(strstr(page, "<title>tier 1 opened: 4</title>"));
    free(page);
    buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_replay(buf, &tech, HOSTILE));
    page = page_text(buf);
    assert_safe(page);
    assert_null(strstr(page, "<script>")); /* only scripts with a src */
    free(page);
    buf = tl_buf_new(TL_WEB_PAGE_MAX);
    TL_ASSERT_OK(tl_web_page_message(buf, NULL, HOSTILE, HOSTILE));
    page = page_text(buf);
    assert_non_null(strstr(page, "&lt;script&gt;alert(1)"));
    assert_null(strstr(page, "<script>alert"));
    free(page);
    json_decref(search);
    json_decref(verify);
    json_decref(report);
}

static void test_a_page_over_its_cap_is_refused_whole(void **state)
{
    (void)state;
    tl_technician_t tech = who();
    tl_buf_t *buf = tl_buf_new(256);
    TL_ASSERT_RC(TL_EFULL, tl_web_page_message(buf, &tech, "title", HOSTILE HOSTILE HOSTILE));
    tl_buf_free(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_the_queues_escape_every_field),
    cmocka_unit_test(test_a_ticket_escapes_its_timeline_and_evidence),
    cmocka_unit_test(test_audit_report_replay_and_messages_escape_too),
    cmocka_unit_test(test_a_page_over_its_cap_is_refused_whole),
};

TL_TEST_MAIN(tests)
