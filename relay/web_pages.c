/*
 * The web view's pages (relay/web_pages.h). Markup is ours and literal; anything taken from an
 * answer goes through text() or json_text(), which escape it for HTML (tl_text_html).
 */
#include "relay/web_pages.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/text.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Our own markup: never text from an answer (that goes through text()). */
static int raw(tl_buf_t *out, const char *markup)
{
    return tl_buf_put(out, markup, strlen(markup));
}

/* Text from another party, escaped for HTML; NULL shows as "-". */
static int text(tl_buf_t *out, const char *value)
{
    if (value == NULL)
        value = "-";
    return tl_text_html(out, value, strlen(value), TL_TEXT_LINE);
}

static int body_text(tl_buf_t *out, const char *value)
{
    if (value == NULL)
        value = "";
    return tl_text_html(out, value, strlen(value), TL_TEXT_BODY);
}

/* A member of object as text: strings as they are, numbers and the rest as compact JSON. */
static int member(tl_buf_t *out, json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    if (value == NULL || json_is_null(value))
        return text(out, "-");
    if (json_is_string(value))
        return text(out, json_string_value(value));
    char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = dumped != NULL ? text(out, dumped) : TL_ENOMEM;
    free(dumped);
    return rc;
}

/* Any JSON value, compact, escaped. */
static int json_text(tl_buf_t *out, json_t *value)
{
    if (value == NULL)
        return text(out, "-");
    char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    int rc = dumped != NULL ? text(out, dumped) : TL_ENOMEM;
    free(dumped);
    return rc;
}

static int time_of(tl_buf_t *out, json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value) || json_integer_value(value) <= 0)
        return raw(out, "-");
    char when[TL_UTC_TEXT];
    tl_format_utc(json_integer_value(value), when);
    return text(out, when);
}

static int begin(tl_buf_t *out, const tl_technician_t *who, const char *title)
{
    int rc = raw(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width\">"
                      "<link rel=\"stylesheet\" href=\"/static/tierline.css\"><title>");
    if (rc == 0)
        rc = text(out, title);
    if (rc == 0)
        rc = raw(out, " · Tierline</title></head><body><header><strong>Tierline</strong>");
    if (rc == 0 && who != NULL) {
        rc = raw(out, " <nav><a href=\"/\">Queues</a> <a href=\"/report\">Report</a> "
                      "<a href=\"/audit\">Audit</a> <a href=\"/signout\">Sign out</a></nav>"
                      "<span class=\"who\" id=\"who\">");
        if (rc == 0)
            rc = text(out, who->name);
        if (rc == 0)
            rc = raw(out, " (");
        if (rc == 0)
            rc = text(out, who->role);
        if (rc == 0)
            rc = raw(out, ")</span>");
    }
    if (rc == 0)
        rc = raw(out, "</header><main><h1>");
    if (rc == 0)
        rc = text(out, title);
    return rc == 0 ? raw(out, "</h1>\n") : rc;
}

static int end(tl_buf_t *out, int script)
{
    return raw(out, script ? "</main><script src=\"/static/tierline.js\"></script></body></html>\n"
                           : "</main></body></html>\n");
}

int tl_web_page_message(tl_buf_t *out, const tl_technician_t *who, const char *title,
                        const char *message)
{
    int rc = begin(out, who, title);
    if (rc == 0)
        rc = raw(out, "<p class=\"message\" id=\"message\">");
    if (rc == 0)
        rc = body_text(out, message);
    if (rc == 0)
        rc = raw(out, "</p>");
    return rc == 0 ? end(out, 0) : rc;
}

/* ---- the queues ------------------------------------------------------------------------------ */

/* A clock's state, as a class and a word: "ok", "warning", "breached", "paused", "idle", ... */
static int clock_cell(tl_buf_t *out, json_t *clock)
{
    const char *state = json_string_value(json_object_get(clock, "state"));
    int warning = json_is_true(json_object_get(clock, "warning"));
    if (state == NULL)
        return raw(out, "<td>-</td>");
    /* The class is one of ours: a state name the desk defines, checked to be a plain word. */
    char word[24];
    snprintf(word, sizeof word, "%s", state);
    for (char *p = word; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
            *p = '-';
    int rc = tl_buf_printf(out, "<td class=\"sla sla-%s%s\">", word, warning ? " sla-warning" : "");
    if (rc == 0)
        rc = text(out, state);
    if (rc == 0 && warning && strcmp(state, "breached") != 0)
        rc = raw(out, " (75%)");
    return rc == 0 ? raw(out, "</td>") : rc;
}

static int ticket_row(tl_buf_t *out, json_t *ticket)
{
    const char *id = json_string_value(json_object_get(ticket, "id"));
    json_t *sla = json_object_get(ticket, "sla");
    int rc = raw(out, "<tr><td><a href=\"/ticket/");
    if (rc == 0)
        rc = text(out, id);
    if (rc == 0)
        rc = raw(out, "\">");
    if (rc == 0)
        rc = text(out, id);
    if (rc == 0)
        rc = raw(out, "</a></td><td class=\"title\">");
    if (rc == 0)
        rc = member(out, ticket, "title");
    static const char *const columns[] = {"tier", "status", "severity", "assignee", "hostname"};
    for (size_t i = 0; rc == 0 && i < sizeof columns / sizeof columns[0]; i++) {
        rc = raw(out, "</td><td>");
        if (rc == 0)
            rc = member(out, ticket, columns[i]);
    }
    if (rc == 0)
        rc = raw(out, "</td>");
    if (rc == 0)
        rc = clock_cell(out, json_object_get(sla, "first_response"));
    if (rc == 0)
        rc = clock_cell(out, json_object_get(sla, "resolution"));
    if (rc == 0)
        rc = raw(out, "<td>");
    if (rc == 0)
        rc = time_of(out, ticket, "due");
    return rc == 0 ? raw(out, "</td></tr>\n") : rc;
}

int tl_web_page_tickets(tl_buf_t *out, const tl_technician_t *who, json_t *answer, const char *tier)
{
    json_t *tickets = json_object_get(answer, "tickets"),
           *notices = json_object_get(answer, "notices");
    int rc = begin(out, who, "Queues");
    if (rc == 0)
        rc = raw(out, "<p class=\"tiers\">Tier: <a href=\"/\">mine</a> <a href=\"/?tier=0\">0</a> "
                      "<a href=\"/?tier=1\">1</a> <a href=\"/?tier=2\">2</a> "
                      "<a href=\"/?tier=3\">3</a> <a href=\"/?tier=4\">4</a> "
                      "<a href=\"/?tier=all\">all</a> — showing ");
    if (rc == 0)
        rc = text(out, tier != NULL ? tier : "your queue");
    if (rc == 0)
        rc = raw(out, "</p>\n");
    size_t i;
    json_t *item;
    if (rc == 0 && json_array_size(notices) > 0) {
        rc = raw(out, "<ul class=\"notices\">");
        json_array_foreach(notices, i, item) {
            if (rc == 0)
                rc = raw(out, "<li>");
            if (rc == 0)
                rc = json_text(out, item);
            if (rc == 0)
                rc = raw(out, "</li>");
        }
        if (rc == 0)
            rc = raw(out, "</ul>\n");
    }
    if (rc == 0 && json_array_size(tickets) == 0)
        rc = raw(out, "<p id=\"empty\">(no tickets)</p>\n");
    if (rc == 0 && json_array_size(tickets) > 0) {
        rc = raw(out, "<table id=\"tickets\"><thead><tr><th>Ticket</th><th>Title</th><th>Tier</th>"
                      "<th>Status</th><th>Severity</th><th>Assignee</th><th>Device</th>"
                      "<th>First response</th><th>Resolution</th><th>Due</th></tr></thead>"
                      "<tbody>\n");
        json_array_foreach(tickets, i, item) {
            if (rc == 0)
                rc = ticket_row(out, item);
        }
        if (rc == 0)
            rc = raw(out, "</tbody></table>\n");
    }
    return rc == 0 ? end(out, 0) : rc;
}

/* ---- one ticket ------------------------------------------------------------------------------ */

static int field(tl_buf_t *out, const char *label, json_t *object, const char *key)
{
    int rc = tl_buf_printf(out, "<tr><th>%s</th><td id=\"field-%s\">", label, key);
    if (rc == 0)
        rc = member(out, object, key);
    return rc == 0 ? raw(out, "</td></tr>\n") : rc;
}

static int clocks_table(tl_buf_t *out, json_t *sla)
{
    json_t *clocks = json_object_get(sla, "clocks");
    if (!json_is_object(clocks))
        return 0;
    int rc = raw(out, "<h2>SLA clocks</h2><table class=\"clocks\"><tr><th>Clock</th><th>State</th>"
                      "<th>Due</th></tr>\n");
    const char *name;
    json_t *clock;
    json_object_foreach(clocks, name, clock) {
        if (rc == 0)
            rc = raw(out, "<tr><td>");
        if (rc == 0)
            rc = text(out, name);
        if (rc == 0)
            rc = raw(out, "</td>");
        if (rc == 0)
            rc = clock_cell(out, clock);
        if (rc == 0)
            rc = raw(out, "<td>");
        if (rc == 0)
            rc = time_of(out, clock, "due_ms");
        if (rc == 0)
            rc = raw(out, "</td></tr>\n");
    }
    return rc == 0 ? raw(out, "</table>\n") : rc;
}

/* A timeline event: time, actor, kind, details; a link to its recording when it names a grant. */
static int event_row(tl_buf_t *out, json_t *event)
{
    json_t *details = json_object_get(event, "details");
    const char *grant = json_string_value(json_object_get(details, "grant"));
    int rc = raw(out, "<tr><td>");
    if (rc == 0)
        rc = time_of(out, event, "time");
    if (rc == 0)
        rc = raw(out, "</td><td>");
    if (rc == 0)
        rc = member(out, event, "actor");
    if (rc == 0)
        rc = raw(out, "</td><td>");
    if (rc == 0)
        rc = member(out, event, "kind");
    if (rc == 0)
        rc = raw(out, "</td><td class=\"details\">");
    if (rc == 0)
        rc = json_text(out, details != NULL ? details : json_null());
    if (rc == 0 && grant != NULL && json_object_get(details, "recording") != NULL) {
        rc = raw(out, " <a class=\"replay\" href=\"/replay/");
        if (rc == 0)
            rc = text(out, grant);
        if (rc == 0)
            rc = raw(out, "\">play the recording</a>");
    }
    return rc == 0 ? raw(out, "</td></tr>\n") : rc;
}

static int evidence_row(tl_buf_t *out, const char *ticket, json_t *item)
{
    const char *hash = json_string_value(json_object_get(item, "hash"));
    int rc = raw(out, "<tr><td>");
    if (rc == 0)
        rc = member(out, item, "kind");
    if (rc == 0)
        rc = raw(out, "</td><td>");
    if (rc == 0)
        rc = member(out, item, "name");
    if (rc == 0)
        rc = raw(out, "</td><td>");
    if (rc == 0)
        rc = member(out, item, "size");
    if (rc == 0)
        rc = raw(out, "</td><td><code class=\"hash\">");
    if (rc == 0)
        rc = text(out, hash);
    if (rc == 0)
        rc = raw(out, "</code></td><td><a href=\"/ticket/");
    if (rc == 0)
        rc = text(out, ticket);
    if (rc == 0)
        rc = raw(out, "/evidence/");
    if (rc == 0)
        rc = text(out, hash);
    return rc == 0 ? raw(out, "\">download</a></td></tr>\n") : rc;
}

int tl_web_page_ticket(tl_buf_t *out, const tl_technician_t *who, json_t *ticket)
{
    const char *id = json_string_value(json_object_get(ticket, "id"));
    char title[64];
    snprintf(title, sizeof title, "Ticket %.40s", id != NULL ? id : "-");
    int rc = begin(out, who, title);
    if (rc == 0)
        rc = raw(out, "<p class=\"ticket-title\" id=\"ticket-title\">");
    if (rc == 0)
        rc = member(out, ticket, "title");
    if (rc == 0)
        rc = raw(out, "</p>\n<table class=\"fields\">\n");
    static const struct {
        const char *label, *key;
    } fields[] = {{"Device", "device"},     {"Host", "hostname"},     {"Tier", "tier"},
                  {"Status", "status"},     {"Assignee", "assignee"}, {"Severity", "severity"},
                  {"Category", "category"}, {"Vendor", "vendor"}};
    for (size_t i = 0; rc == 0 && i < sizeof fields / sizeof fields[0]; i++)
        rc = field(out, fields[i].label, ticket, fields[i].key);
    if (rc == 0)
        rc = raw(out, "<tr><th>Created</th><td>");
    if (rc == 0)
        rc = time_of(out, ticket, "created");
    if (rc == 0)
        rc = raw(out, "</td></tr></table>\n<pre class=\"description\" id=\"description\">");
    if (rc == 0)
        rc = body_text(out, json_string_value(json_object_get(ticket, "description")));
    if (rc == 0)
        rc = raw(out, "</pre>\n");
    if (rc == 0)
        rc = clocks_table(out, json_object_get(ticket, "sla"));
    json_t *escalation = json_object_get(ticket, "escalation");
    if (rc == 0 && escalation != NULL && !json_is_null(escalation)) {
        rc = raw(out, "<h2>Escalation</h2><pre class=\"escalation\" id=\"escalation\">");
        char *dumped = json_dumps(escalation, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (rc == 0)
            rc = dumped != NULL ? body_text(out, dumped) : TL_ENOMEM;
        free(dumped);
        if (rc == 0)
            rc = raw(out, "</pre>\n");
    }
    size_t i;
    json_t *item;
    json_t *tried = json_object_get(ticket, "already_tried");
    if (rc == 0 && json_array_size(tried) > 0) {
        rc = raw(out, "<h2>Already tried</h2><table class=\"timeline\">\n");
        json_array_foreach(tried, i, item) {
            if (rc == 0)
                rc = event_row(out, item);
        }
        if (rc == 0)
            rc = raw(out, "</table>\n");
    }
    if (rc == 0)
        rc = raw(out, "<h2>Timeline</h2><table class=\"timeline\" id=\"timeline\"><tr><th>Time</th>"
                      "<th>Who</th><th>What</th><th>Details</th></tr>\n");
    json_array_foreach(json_object_get(ticket, "events"), i, item) {
        if (rc == 0)
            rc = event_row(out, item);
    }
    if (rc == 0)
        rc = raw(out, "</table>\n<h2>Evidence</h2><table class=\"evidence\" id=\"evidence\"><tr>"
                      "<th>Kind</th><th>Name</th><th>Bytes</th><th>SHA-256</th><th></th></tr>\n");
    json_array_foreach(json_object_get(ticket, "evidence"), i, item) {
        if (rc == 0)
            rc = evidence_row(out, id, item);
    }
    if (rc == 0)
        rc = raw(out, "</table>\n");
    return rc == 0 ? end(out, 0) : rc;
}

/* ---- a recording -------------------------------------------------------------------------- */

int tl_web_page_replay(tl_buf_t *out, const tl_technician_t *who, const char *session)
{
    int rc = begin(out, who, "Recording");
    if (rc == 0)
        rc = raw(out, "<link rel=\"stylesheet\" href=\"/static/asciinema-player.css\">"
                      "<p>Session <code id=\"session\">");
    if (rc == 0)
        rc = text(out, session);
    if (rc == 0)
        rc = raw(out, "</code> — markers are the consent decisions and grant ends. "
                      "<a id=\"cast-link\" href=\"/cast/");
    if (rc == 0)
        rc = text(out, session);
    if (rc == 0)
        rc = raw(out, "\">asciicast file</a></p>\n<div id=\"player\" data-cast=\"/cast/");
    if (rc == 0)
        rc = text(out, session);
    if (rc == 0)
        rc = raw(out, "\"></div><p id=\"player-state\">loading…</p>\n"
                      "<script src=\"/static/asciinema-player.min.js\"></script>\n");
    return rc == 0 ? end(out, 1) : rc;
}

/* ---- the audit log ----------------------------------------------------------------------------
 */

static int search_form(tl_buf_t *out)
{
    return raw(out, "<form method=\"get\" action=\"/audit\" class=\"search\">"
                    "<label>Ticket <input name=\"ticket\" size=\"8\"></label> "
                    "<label>Session <input name=\"session\" size=\"12\"></label> "
                    "<label>Actor <input name=\"actor\" size=\"12\"></label> "
                    "<label>Device <input name=\"device\" size=\"8\"></label> "
                    "<label>Action <input name=\"action\" size=\"14\"></label> "
                    "<button type=\"submit\">Search</button></form>\n");
}

int tl_web_page_audit(tl_buf_t *out, const tl_technician_t *who, json_t *search, json_t *verify)
{
    int rc = begin(out, who, "Audit log");
    if (rc == 0)
        rc = raw(out, "<h2>Verification</h2><p id=\"verify\" class=\"");
    int ok = verify != NULL && json_is_true(json_object_get(verify, "ok"));
    if (rc == 0)
        rc = raw(out, ok ? "verify-ok\">verified: " : "verify-bad\">not verified: ");
    if (rc == 0)
        rc = verify != NULL ? json_text(out, verify) : raw(out, "unknown");
    if (rc == 0)
        rc = raw(out, "</p>\n<h2>Search</h2>\n");
    if (rc == 0)
        rc = search_form(out);
    json_t *entries = json_object_get(search, "entries");
    if (rc == 0)
        rc = tl_buf_printf(out, "<p>%zu entries shown.</p>\n", json_array_size(entries));
    if (rc == 0)
        rc = raw(out, "<table id=\"entries\"><tr><th>Leaf</th><th>Time</th><th>Actor</th>"
                      "<th>Action</th><th>Subject</th><th>Details</th></tr>\n");
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        static const char *const keys[] = {"actor", "action", "subject"};
        if (rc == 0)
            rc = raw(out, "<tr><td>");
        if (rc == 0)
            rc = member(out, entry, "index");
        if (rc == 0)
            rc = raw(out, "</td><td>");
        if (rc == 0)
            rc = json_is_integer(json_object_get(entry, "time")) ? time_of(out, entry, "time")
                                                                 : member(out, entry, "time");
        for (size_t k = 0; rc == 0 && k < sizeof keys / sizeof keys[0]; k++) {
            rc = raw(out, "</td><td>");
            if (rc == 0)
                rc = member(out, entry, keys[k]);
        }
        if (rc == 0)
            rc = raw(out, "</td><td class=\"details\">");
        if (rc == 0)
            rc = member(out, entry, "details");
        if (rc == 0)
            rc = raw(out, "</td></tr>\n");
    }
    if (rc == 0)
        rc = raw(out, "</table>\n");
    return rc == 0 ? end(out, 0) : rc;
}

/* ---- the report ------------------------------------------------------------------------------ */

/* One bar chart: a bar per tier for each of the measures, drawn by us from numbers. */
static int tier_chart(tl_buf_t *out, json_t *rows)
{
    static const char *const measures[] = {"opened", "resolved", "escalated"};
    enum { TIERS = 5, MEASURES = 3 };
    json_int_t sums[TIERS][MEASURES] = {{0}};
    json_int_t top = 1;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        json_int_t tier = json_integer_value(json_object_get(row, "tier"));
        if (tier < 0 || tier >= TIERS)
            continue;
        for (int m = 0; m < MEASURES; m++) {
            sums[tier][m] += json_integer_value(json_object_get(row, measures[m]));
            if (sums[tier][m] > top)
                top = sums[tier][m];
        }
    }
    int rc = raw(out, "<figure><svg id=\"chart-tiers\" role=\"img\" width=\"560\" height=\"220\" "
                      "viewBox=\"0 0 560 220\" xmlns=\"http://www.w3.org/2000/svg\">"
                      "<title>Tickets per tier</title>\n");
    for (int t = 0; rc == 0 && t < TIERS; t++) {
        for (int m = 0; rc == 0 && m < MEASURES; m++) {
            int height = (int)(sums[t][m] * 160 / top);
            int x = 20 + t * 108 + m * 28;
            rc = tl_buf_printf(
                out,
                "<rect class=\"bar bar-%s\" x=\"%d\" y=\"%d\" width=\"24\" height=\"%d\">"
                "<title>tier %d %s: %" JSON_INTEGER_FORMAT "</title></rect>"
                "<text x=\"%d\" y=\"%d\" class=\"value\">%" JSON_INTEGER_FORMAT "</text>\n",
                measures[m], x, 180 - height, height, t, measures[m], sums[t][m], x, 176 - height,
                sums[t][m]);
        }
        if (rc == 0)
            rc = tl_buf_printf(out, "<text x=\"%d\" y=\"200\" class=\"axis\">tier %d</text>\n",
                               20 + t * 108 + 20, t);
    }
    if (rc == 0)
        rc = raw(out, "</svg><figcaption><span class=\"key bar-opened\">opened</span> "
                      "<span class=\"key bar-resolved\">resolved</span> "
                      "<span class=\"key bar-escalated\">escalated</span></figcaption>"
                      "</figure>\n");
    return rc;
}

int tl_web_page_report(tl_buf_t *out, const tl_technician_t *who, json_t *report)
{
    json_t *period = json_object_get(report, "period");
    int rc = begin(out, who, "Desk report");
    if (rc == 0)
        rc = raw(out, "<p id=\"period\">From ");
    if (rc == 0)
        rc = time_of(out, period, "since_ms");
    if (rc == 0)
        rc = raw(out, " to ");
    if (rc == 0)
        rc = time_of(out, period, "until_ms");
    if (rc == 0)
        rc = raw(out, ".</p>\n<h2>Tickets per tier</h2>\n");
    if (rc == 0)
        rc = tier_chart(out, json_object_get(report, "rows"));
    json_t *total = json_object_get(report, "total");
    if (rc == 0)
        rc = raw(out, "<h2>All tiers</h2><table class=\"fields\" id=\"total\">\n");
    const char *key;
    json_t *value;
    json_object_foreach(total, key, value) {
        if (rc == 0)
            rc = raw(out, "<tr><th>");
        if (rc == 0)
            rc = text(out, key);
        if (rc == 0)
            rc = raw(out, "</th><td>");
        if (rc == 0)
            rc =
                json_is_string(value) ? text(out, json_string_value(value)) : json_text(out, value);
        if (rc == 0)
            rc = raw(out, "</td></tr>\n");
    }
    if (rc == 0)
        rc = raw(out, "</table>\n<h2>Known problems and self-help</h2><pre class=\"details\">");
    if (rc == 0)
        rc = json_text(out, json_object_get(report, "problems"));
    if (rc == 0)
        rc = raw(out, "\n");
    if (rc == 0)
        rc = json_text(out, json_object_get(report, "self_help"));
    if (rc == 0)
        rc = raw(out, "</pre>\n");
    return rc == 0 ? end(out, 0) : rc;
}
