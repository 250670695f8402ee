/*
 * The user's side of tickets on the wire (proto/msg_tickets.h): what goes out comes back the
 * same, the largest answer fits one frame, and every field out of its limits refuses the
 * whole message, naming nothing half-read.
 */
#include "tl_test.h"

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/msg_tickets.h"
#include "proto/text.h"

#include <stdlib.h>

static tl_ticket_summary_t summary(const char *id, const char *status, const char *note)
{
    tl_ticket_summary_t s = {0};
    snprintf(s.ticket, sizeof s.ticket, "%s", id);
    snprintf(s.title, sizeof s.title, "the printer says it is offline");
    snprintf(s.status, sizeof s.status, "%s", status);
    s.updated_ms = 1767261600000;
    if (note != NULL) {
        s.has_note = 1;
        snprintf(s.note, sizeof s.note, "%s", note);
        snprintf(s.note_by, sizeof s.note_by, "alice");
        s.note_ms = 1767261500000;
    }
    return s;
}

static void assert_same_summary(const tl_ticket_summary_t *a, const tl_ticket_summary_t *b)
{
    assert_string_equal(a->ticket, b->ticket);
    assert_string_equal(a->title, b->title);
    assert_string_equal(a->status, b->status);
    assert_true(a->updated_ms == b->updated_ms);
    assert_int_equal(a->has_note, b->has_note);
    assert_string_equal(a->note, b->note);
    assert_string_equal(a->note_by, b->note_by);
    assert_true(a->note_ms == b->note_ms);
}

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_ALLOW_NUL, &error);
    if (value == NULL)
        fail_msg("test JSON does not parse: %s: %s", text, error.text);
    return value;
}

/* What a list decodes to: its status, with the count it reports. */
static int decode_list(const char *text, size_t *count)
{
    tl_ticket_summary_t *items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    json_t *result = parse(text);
    int more = 0;
    int rc = tl_msg_tickets_decode(result, items, count, &more);
    json_decref(result);
    free(items);
    return rc;
}

static void test_a_list_comes_back_as_it_was_sent(void **state)
{
    (void)state;
    tl_ticket_summary_t in[2] = {summary("T-4", "waiting-user", "Could you switch it on?"),
                                 summary("T-2", "open", NULL)};
    snprintf(in[0].title, sizeof in[0].title, "\x1b]0;owned\x07 printer \xc3\xa9");
    json_t *members = NULL;
    TL_ASSERT_OK(tl_msg_tickets_encode(in, 2, 1, &members));
    /* Through a real CONTROL frame, as the relay sends it. */
    json_object_set_new(members, "type", json_string("result"));
    json_object_set_new(members, "ok", json_true());
    tl_msg_t msg = {.type = TL_MSG_CONTROL, .u.control = {7, members}};
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + TL_FRAME_HEADER_LEN);
    TL_ASSERT_OK(tl_msg_encode(buf, &msg));
    json_decref(members);
    const uint8_t *bytes = tl_buf_data(buf);
    tl_frame_t frame = {bytes[4], bytes[5], bytes + TL_FRAME_HEADER_LEN,
                        tl_buf_len(buf) - TL_FRAME_HEADER_LEN};
    tl_msg_t decoded;
    TL_ASSERT_OK(tl_msg_decode(&frame, &decoded));

    tl_ticket_summary_t out[TL_TICKETS_LIST_MAX];
    size_t count = 0;
    int more = 0;
    TL_ASSERT_OK(tl_msg_tickets_decode(decoded.u.control.body, out, &count, &more));
    assert_int_equal(count, 2);
    assert_true(more);
    assert_same_summary(&in[0], &out[0]);
    assert_same_summary(&in[1], &out[1]);
    /* The title is kept as it came: escaping is for whoever shows it. */
    assert_string_equal(out[0].title, "\x1b]0;owned\x07 printer \xc3\xa9");
    assert_false(out[1].has_note);
    tl_msg_clear(&decoded);
    tl_buf_free(buf);
}

/* Every field at its limit, of the characters JSON writes longest: one frame holds it. */
static void test_the_largest_answer_fits_one_frame(void **state)
{
    (void)state;
    tl_ticket_summary_t *items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    for (size_t i = 0; i < TL_TICKETS_LIST_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "T-%zu", i + 1);
        items[i] = summary(id, "waiting-vendor", "");
        memset(items[i].title, 0x01, TL_TICKET_TITLE_MAX);
        memset(items[i].note, 0x1f, TL_TICKET_NOTE_MAX);
        memset(items[i].note_by, 'a', TL_TICKET_BY_MAX);
        snprintf(items[i].ticket, sizeof items[i].ticket, "T-%030zu", i);
        items[i].updated_ms = items[i].note_ms = TL_TICKET_TIME_MAX;
    }
    json_t *members = NULL;
    TL_ASSERT_OK(tl_msg_tickets_encode(items, TL_TICKETS_LIST_MAX, 1, &members));
    json_object_set_new(members, "type", json_string("result"));
    json_object_set_new(members, "ok", json_true());
    tl_msg_t msg = {.type = TL_MSG_CONTROL, .u.control = {UINT32_MAX, members}};
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + TL_FRAME_HEADER_LEN);
    TL_ASSERT_OK(tl_msg_encode(buf, &msg));
    /* And the agent's control socket line that carries it on (agent/control.h). */
    char *line = tl_text_json_dumps(members, JSON_COMPACT);
    assert_non_null(line);
    if (strlen(line) > 256 * 1024)
        fail_msg("the largest answer is %zu bytes as one line", strlen(line));
    free(line);
    json_decref(members);
    tl_buf_free(buf);
    free(items);
}

static void test_encoding_refuses_what_the_limits_do_not_allow(void **state)
{
    (void)state;
    tl_ticket_summary_t items[TL_TICKETS_LIST_MAX + 1];
    for (size_t i = 0; i <= TL_TICKETS_LIST_MAX; i++)
        items[i] = summary("T-1", "open", NULL);
    json_t *out = NULL;
    TL_ASSERT_RC(TL_EINVAL, tl_msg_tickets_encode(items, TL_TICKETS_LIST_MAX + 1, 0, &out));
    assert_null(out);
    items[0] = summary("T 1", "open", NULL);
    TL_ASSERT_RC(TL_EINVAL, tl_msg_tickets_encode(items, 1, 0, &out));
    items[0] = summary("T-1", "Open", NULL);
    TL_ASSERT_RC(TL_EINVAL, tl_msg_tickets_encode(items, 1, 0, &out));
    items[0] = summary("T-1", "open", "fine");
    snprintf(items[0].note_by, sizeof items[0].note_by, "tech:alice");
    TL_ASSERT_RC(TL_EINVAL, tl_msg_tickets_encode(items, 1, 0, &out));
    items[0] = summary("T-1", "open", "\xff not UTF-8");
    TL_ASSERT_RC(TL_EINVAL, tl_msg_tickets_encode(items, 1, 0, &out));
    assert_null(out);
}

#define TICKET(members)                                                                            \
    "{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\",\"updated\":1" members "}"
#define LIST(items) "{\"more\":false,\"tickets\":[" items "]}"

static void test_a_list_out_of_its_limits_is_refused_whole(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"more\":false}",
        "{\"tickets\":[]}",
        "{\"tickets\":{},\"more\":false}",
        "{\"tickets\":[],\"more\":1}",
        LIST("1"),
        LIST("{}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\"}"),
        LIST("{\"ticket\":\"T 1\",\"title\":\"t\",\"status\":\"open\",\"updated\":1}"),
        LIST("{\"ticket\":\"\",\"title\":\"t\",\"status\":\"open\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\\u001b[2J\",\"title\":\"t\",\"status\":\"open\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"a\\u0000b\",\"status\":\"open\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":7,\"status\":\"open\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"Open\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"\",\"updated\":1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\",\"updated\":-1}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\",\"updated\":1.5}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\",\"updated\":\"1\"}"),
        LIST("{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\",\"updated\":"
             "253402300800000}"),
        LIST(TICKET(",\"note\":\"hello\"")),
        LIST(TICKET(",\"note\":{\"text\":\"hi\",\"by\":\"alice\"}")),
        LIST(TICKET(",\"note\":{\"text\":\"hi\",\"by\":\"\",\"time\":1}")),
        LIST(TICKET(",\"note\":{\"text\":\"hi\",\"by\":\"tech:alice\",\"time\":1}")),
        LIST(TICKET(",\"note\":{\"text\":5,\"by\":\"alice\",\"time\":1}")),
        LIST(TICKET("") "," TICKET("")),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t count = 99;
        int rc = decode_list(bad[i], &count);
        if (rc != TL_EMSG_MALFORMED || count != 0)
            fail_msg("accepted (rc %s, count %zu): %s", tl_err_name(rc), count, bad[i]);
    }
    /* Unknown members are for newer peers: ignored. A null note is no note. */
    size_t count = 0;
    TL_ASSERT_OK(decode_list(
        "{\"tickets\":[" TICKET(",\"note\":null,\"sla\":{}") "],"
                                                             "\"more\":false,\"next\":1}",
        &count));
    assert_int_equal(count, 1);
}

static void test_texts_one_byte_over_their_limits_are_refused(void **state)
{
    (void)state;
    char text[4096];
    char long_title[TL_TICKET_TITLE_MAX + 2], long_note[TL_TICKET_NOTE_MAX + 2];
    memset(long_title, 'x', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = '\0';
    memset(long_note, 'y', sizeof long_note - 1);
    long_note[sizeof long_note - 1] = '\0';
    size_t count = 0;
    snprintf(text, sizeof text,
             LIST("{\"ticket\":\"T-1\",\"title\":\"%s\",\"status\":\"open\",\"updated\":1}"),
             long_title);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_list(text, &count));
    long_title[TL_TICKET_TITLE_MAX] = '\0';
    snprintf(text, sizeof text,
             LIST("{\"ticket\":\"T-1\",\"title\":\"%s\",\"status\":\"open\",\"updated\":1}"),
             long_title);
    TL_ASSERT_OK(decode_list(text, &count));
    snprintf(text, sizeof text, LIST(TICKET(",\"note\":{\"text\":\"%s\",\"by\":\"a\",\"time\":1}")),
             long_note);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_list(text, &count));
    long_note[TL_TICKET_NOTE_MAX] = '\0';
    snprintf(text, sizeof text, LIST(TICKET(",\"note\":{\"text\":\"%s\",\"by\":\"a\",\"time\":1}")),
             long_note);
    TL_ASSERT_OK(decode_list(text, &count));

    /* One ticket more than a list may hold. */
    char *many = calloc(1, 64 * 1024);
    size_t used = (size_t)snprintf(many, 64 * 1024, "{\"more\":true,\"tickets\":[");
    for (int i = 0; i <= TL_TICKETS_LIST_MAX; i++)
        used += (size_t)snprintf(many + used, 64 * 1024 - used,
                                 "%s{\"ticket\":\"T-%d\",\"title\":\"t\",\"status\":\"open\","
                                 "\"updated\":1}",
                                 i ? "," : "", i + 1);
    snprintf(many + used, 64 * 1024 - used, "]}");
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_list(many, &count));
    free(many);
}

static void test_an_update_comes_back_as_it_was_sent_and_bad_ones_are_refused(void **state)
{
    (void)state;
    tl_ticket_update_t in = {.summary = summary("T-9", "resolved", "restarted cups\n")};
    snprintf(in.event, sizeof in.event, "ticket.resolved");
    json_t *body = NULL;
    TL_ASSERT_OK(tl_msg_ticket_update_encode(&in, &body));
    assert_string_equal(json_string_value(json_object_get(body, "type")), "ticket.update");
    tl_ticket_update_t out;
    TL_ASSERT_OK(tl_msg_ticket_update_decode(body, &out));
    assert_string_equal(in.event, out.event);
    assert_same_summary(&in.summary, &out.summary);
    json_decref(body);

    static const char *const bad[] = {
        "{\"type\":\"ticket.updated\",\"event\":\"note\",\"ticket\":" TICKET("") "}",
        "{\"event\":\"note\",\"ticket\":" TICKET("") "}",
        "{\"type\":\"ticket.update\",\"ticket\":" TICKET("") "}",
        "{\"type\":\"ticket.update\",\"event\":\"Note\",\"ticket\":" TICKET("") "}",
        "{\"type\":\"ticket.update\",\"event\":\"note\"}",
        "{\"type\":\"ticket.update\",\"event\":\"note\",\"ticket\":[]}",
        "{\"type\":\"ticket.update\",\"event\":\"note\",\"ticket\":"
        "{\"ticket\":\"T-1\",\"title\":\"t\",\"status\":\"open\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *value = parse(bad[i]);
        int rc = tl_msg_ticket_update_decode(value, &out);
        json_decref(value);
        if (rc != TL_EMSG_MALFORMED)
            fail_msg("accepted (rc %s): %s", tl_err_name(rc), bad[i]);
    }
    snprintf(in.event, sizeof in.event, "NOTE");
    TL_ASSERT_RC(TL_EINVAL, tl_msg_ticket_update_encode(&in, &body));
}

static void test_clipping_cuts_whole_characters_and_says_so(void **state)
{
    (void)state;
    char out[32];
    tl_msg_tickets_clip(out, sizeof out, 10, "short");
    assert_string_equal(out, "short");
    tl_msg_tickets_clip(out, sizeof out, 10, "0123456789");
    assert_string_equal(out, "0123456789");
    tl_msg_tickets_clip(out, sizeof out, 10, "0123456789a");
    assert_string_equal(out, "0123456" TL_TEXT_ELLIPSIS);
    /* "é" is two bytes: cut before it, never inside. */
    tl_msg_tickets_clip(out, sizeof out, 10, "012345\xc3\xa9xyz");
    assert_string_equal(out, "012345" TL_TEXT_ELLIPSIS);
    assert_true(tl_text_utf8_valid(out, strlen(out)));
    /* The buffer bounds it too. */
    char small[8];
    tl_msg_tickets_clip(small, sizeof small, 100, "abcdefghijkl");
    assert_string_equal(small, "abcd" TL_TEXT_ELLIPSIS);
    tl_msg_tickets_clip(out, sizeof out, 10, NULL);
    assert_string_equal(out, "");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_list_comes_back_as_it_was_sent),
    cmocka_unit_test(test_the_largest_answer_fits_one_frame),
    cmocka_unit_test(test_encoding_refuses_what_the_limits_do_not_allow),
    cmocka_unit_test(test_a_list_out_of_its_limits_is_refused_whole),
    cmocka_unit_test(test_texts_one_byte_over_their_limits_are_refused),
    cmocka_unit_test(test_an_update_comes_back_as_it_was_sent_and_bad_ones_are_refused),
    cmocka_unit_test(test_clipping_cuts_whole_characters_and_says_so),
};

TL_TEST_MAIN(tests)
