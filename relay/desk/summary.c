/*
 * The "already tried" summary of a ticket (relay/desk/summary.h; docs/desk.md "Escalation"):
 * the timeline's events and the evidence rows read into one JSON document, its canonical text
 * and its readable form.
 */
#include "relay/desk/summary.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_summary {
    json_t *doc;
};

static const char *const section_names[TL_SUMMARY_SECTIONS] = {
    [TL_SUMMARY_SELF_HELP] = "self_help",   [TL_SUMMARY_DIAGNOSTICS] = "diagnostics",
    [TL_SUMMARY_COMMANDS] = "commands",     [TL_SUMMARY_RUNBOOKS] = "runbooks",
    [TL_SUMMARY_SHELLS] = "shells",         [TL_SUMMARY_NOTES] = "notes",
    [TL_SUMMARY_USER_NOTES] = "user_notes",
};

/* The sections that count as tried: self-help's and what technicians ran. */
static int section_tried(tl_summary_section_t section)
{
    return section <= TL_SUMMARY_SHELLS;
}

const char *tl_summary_section_name(tl_summary_section_t section)
{
    return (unsigned)section < TL_SUMMARY_SECTIONS ? section_names[section] : "";
}

/* ---- reading the rows ----------------------------------------------------------------------- */

/* Text for the document: JSON holds UTF-8 only, so stray bytes become \xHH as they are shown. */
static json_t *text_value(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *value = json_string(text);
    if (value == NULL) {
        char *shown = tl_text_utf8_dup(text, strlen(text));
        value = shown != NULL ? json_string(shown) : NULL;
        free(shown);
    }
    return value;
}

/* A member of details that is a string, as a new value; null otherwise. */
static json_t *string_member(json_t *details, const char *key)
{
    json_t *value = json_object_get(details, key);
    return json_is_string(value) ? json_incref(value) : json_null();
}

static json_t *integer_member(json_t *details, const char *key)
{
    json_t *value = json_object_get(details, key);
    return json_is_integer(value) ? json_incref(value) : json_null();
}

/* A SHA-256 member (64 lowercase hex digits) as a new value; null otherwise. */
static json_t *hash_member(json_t *details, const char *key)
{
    const char *hash = json_string_value(json_object_get(details, key));
    return hash != NULL && tl_sha256_hex_valid(hash) ? json_string(hash) : json_null();
}

/* An array of strings (argv) as it is; null for anything else. */
static json_t *words_member(json_t *details, const char *key)
{
    json_t *value = json_object_get(details, key);
    size_t i;
    json_t *word;
    if (!json_is_array(value))
        return json_null();
    json_array_foreach(value, i, word)
        if (!json_is_string(word))
            return json_null();
    return json_incref(value);
}

/* An object of strings ({NAME: VALUE}) as it is; null for anything else. */
static json_t *args_member(json_t *details, const char *key)
{
    json_t *value = json_object_get(details, key);
    const char *name;
    json_t *item;
    if (!json_is_object(value))
        return json_null();
    json_object_foreach(value, name, item)
        if (!json_is_string(item))
            return json_null();
    return json_incref(value);
}

/* The evidence row named name; NULL if none. */
static const tl_evidence_row_t *evidence_named(const tl_summary_input_t *input, const char *name)
{
    for (size_t i = 0; name != NULL && i < input->evidence_count; i++)
        if (input->evidence[i].name != NULL && strcmp(input->evidence[i].name, name) == 0)
            return &input->evidence[i];
    return NULL;
}

/* Who added the evidence item hash: the actor of its evidence.added event; NULL if none. */
static const char *evidence_adder(const tl_summary_input_t *input, json_t *const *details,
                                  const char *hash)
{
    for (size_t i = 0; i < input->event_count; i++) {
        const char *kind = input->events[i].kind;
        const char *added = json_string_value(json_object_get(details[i], "sha256"));
        if (kind != NULL && strcmp(kind, "evidence.added") == 0 && added != NULL &&
            strcmp(added, hash) == 0)
            return input->events[i].actor;
    }
    return NULL;
}

/* Builds an object from pairs of (key, value taken); NULL if any is missing. */
static json_t *object_of(int pairs, ...)
{
    json_t *object = json_object();
    int ok = object != NULL;
    va_list args;
    va_start(args, pairs);
    for (int i = 0; i < pairs; i++) {
        const char *key = va_arg(args, const char *);
        json_t *value = va_arg(args, json_t *);
        if (!ok || value == NULL) {
            json_decref(value);
            ok = 0;
        } else if (json_object_set_new(object, key, value) != 0) {
            ok = 0; /* value is released by the call */
        }
    }
    va_end(args);
    if (!ok) {
        json_decref(object);
        return NULL;
    }
    return object;
}

/* The evidence an event names by "evidence_name": its hash and name, as members of row. */
static int add_named_evidence(json_t *row, const tl_summary_input_t *input, json_t *details)
{
    const char *name = json_string_value(json_object_get(details, "evidence_name"));
    const tl_evidence_row_t *item = evidence_named(input, name);
    if (json_object_set_new(row, "sha256", item != NULL ? json_string(item->hash) : json_null()) ||
        json_object_set_new(row, "evidence", item != NULL ? text_value(item->name) : json_null()))
        return TL_ENOMEM;
    return 0;
}

/* How a session ended: exit_status, exit_signal, ended_by (each null when not said). */
static int add_ending(json_t *row, json_t *details)
{
    if (json_object_set_new(row, "exit_status", integer_member(details, "exit_status")) ||
        json_object_set_new(row, "exit_signal", string_member(details, "exit_signal")) ||
        json_object_set_new(row, "ended_by", string_member(details, "ended_by")))
        return TL_ENOMEM;
    return 0;
}

/* A session of type "shell" (not "observe", nor "diag"). */
static int is_shell(json_t *details)
{
    const char *type = json_string_value(json_object_get(details, "type"));
    return type != NULL && strcmp(type, "shell") == 0;
}

/* The row an event makes in a section, or NULL with *section TL_SUMMARY_SECTIONS for none. */
static json_t *event_row(const tl_summary_input_t *input, const tl_ticket_event_row_t *event,
                         json_t *details, tl_summary_section_t *section)
{
    const char *kind = event->kind != NULL ? event->kind : "";
    json_t *row = NULL;
    int rc = 0;
    *section = TL_SUMMARY_SECTIONS;
    if (strcmp(kind, "exec.finished") == 0) {
        *section = TL_SUMMARY_COMMANDS;
        row = object_of(1, "argv", words_member(details, "argv"));
        rc = row != NULL ? add_ending(row, details) : TL_ENOMEM;
        if (rc == 0)
            rc = add_named_evidence(row, input, details);
    } else if (strcmp(kind, "fix.finished") == 0) {
        *section = TL_SUMMARY_RUNBOOKS;
        row = object_of(2, "runbook", string_member(details, "runbook"), "args",
                        args_member(details, "args"));
        rc = row != NULL ? add_ending(row, details) : TL_ENOMEM;
        if (rc == 0)
            rc = add_named_evidence(row, input, details);
    } else if (strcmp(kind, "session.ended") == 0 && is_shell(details)) {
        /* Shells only: an observer watched someone's shell and did nothing on the machine. */
        *section = TL_SUMMARY_SHELLS;
        row = object_of(3, "duration_ms", integer_member(details, "duration_ms"), "sha256",
                        hash_member(details, "recording"), "evidence",
                        string_member(details, "evidence_name"));
        rc = row != NULL ? add_ending(row, details) : TL_ENOMEM;
    } else if (strcmp(kind, "selfhelp.shown") == 0 || strcmp(kind, "selfhelp.applied") == 0) {
        *section = TL_SUMMARY_SELF_HELP;
        row = object_of(4, "event", json_string(kind + strlen("selfhelp.")), "article",
                        string_member(details, "article"), "title", string_member(details, "title"),
                        "outcome", string_member(details, "outcome"));
    } else if (strcmp(kind, "note") == 0) {
        *section = TL_SUMMARY_NOTES;
        row = object_of(1, "text", string_member(details, "text"));
    } else if (strcmp(kind, "user.note") == 0) {
        *section = TL_SUMMARY_USER_NOTES;
        row = object_of(1, "text", string_member(details, "text"));
    } else {
        return NULL;
    }
    if (rc == 0 && row != NULL &&
        (json_object_set_new(row, "time", json_integer(event->time)) ||
         json_object_set_new(row, "by", text_value(event->actor))))
        rc = TL_ENOMEM;
    if (rc != 0 || row == NULL) {
        json_decref(row);
        *section = TL_SUMMARY_SECTIONS;
        return NULL;
    }
    return row;
}

/* A diagnostics item as its row: when, who added it (and so how), its hash and name. */
static json_t *diagnostics_row(const tl_summary_input_t *input, json_t *const *details,
                               const tl_evidence_row_t *item)
{
    const char *by = evidence_adder(input, details, item->hash);
    const char *via = by == NULL                      ? NULL
                      : strncmp(by, "agent:", 6) == 0 ? "ticket"
                      : strncmp(by, "tech:", 5) == 0  ? "diag"
                                                      : NULL;
    return object_of(6, "time", json_integer(item->created), "by", text_value(by), "via",
                     text_value(via), "sha256", json_string(item->hash), "evidence",
                     text_value(item->name), "size", json_integer((json_int_t)item->size));
}

/* Appends row to its section, keeping the latest TL_SUMMARY_SECTION_MAX. */
static int keep_row(json_t *sections[TL_SUMMARY_SECTIONS], size_t omitted[TL_SUMMARY_SECTIONS],
                    tl_summary_section_t section, json_t *row)
{
    if (row == NULL)
        return TL_ENOMEM;
    if (json_array_append_new(sections[section], row) != 0)
        return TL_ENOMEM;
    if (json_array_size(sections[section]) > TL_SUMMARY_SECTION_MAX) {
        json_array_remove(sections[section], 0);
        omitted[section]++;
    }
    return 0;
}

static json_t *move_value(const tl_summary_move_t *move)
{
    if (move == NULL)
        return json_null();
    return object_of(5, "time", json_integer(move->time_ms), "by", text_value(move->by),
                     "from_tier", json_integer(move->from_tier), "to_tier",
                     json_integer(move->to_tier), "reason", text_value(move->reason));
}

int tl_summary_build(const tl_summary_input_t *input, const tl_summary_move_t *move,
                     tl_summary_t **out)
{
    if (input == NULL || input->ticket == NULL || input->title == NULL ||
        (input->event_count > 0 && input->events == NULL) ||
        (input->evidence_count > 0 && input->evidence == NULL))
        return TL_EINVAL;
    json_t *sections[TL_SUMMARY_SECTIONS] = {0};
    size_t omitted[TL_SUMMARY_SECTIONS] = {0};
    json_t **details = calloc(input->event_count + 1, sizeof *details);
    tl_summary_t *summary = calloc(1, sizeof *summary);
    json_t *doc = NULL;
    int rc = details != NULL && summary != NULL ? 0 : TL_ENOMEM;
    for (int s = 0; rc == 0 && s < TL_SUMMARY_SECTIONS; s++)
        if ((sections[s] = json_array()) == NULL)
            rc = TL_ENOMEM;
    /* Each event's details once: what does not parse is {}. */
    for (size_t i = 0; rc == 0 && i < input->event_count; i++) {
        const char *text = input->events[i].details;
        details[i] = text != NULL ? json_loads(text, 0, NULL) : NULL;
        if (!json_is_object(details[i])) {
            json_decref(details[i]);
            if ((details[i] = json_object()) == NULL)
                rc = TL_ENOMEM;
        }
    }
    for (size_t i = 0; rc == 0 && i < input->evidence_count; i++) {
        const tl_evidence_row_t *item = &input->evidence[i];
        if (item->kind != NULL && strcmp(item->kind, "diagnostics") == 0 && item->hash != NULL)
            rc = keep_row(sections, omitted, TL_SUMMARY_DIAGNOSTICS,
                          diagnostics_row(input, details, item));
    }
    for (size_t i = 0; rc == 0 && i < input->event_count; i++) {
        tl_summary_section_t section;
        json_t *row = event_row(input, &input->events[i], details[i], &section);
        if (section != TL_SUMMARY_SECTIONS)
            rc = keep_row(sections, omitted, section, row);
    }
    json_t *omitted_counts = rc == 0 ? json_object() : NULL;
    size_t tried = 0;
    for (int s = 0; rc == 0 && s < TL_SUMMARY_SECTIONS; s++) {
        if (section_tried((tl_summary_section_t)s))
            tried += json_array_size(sections[s]) + omitted[s];
        if (omitted[s] > 0 && (omitted_counts == NULL ||
                               json_object_set_new(omitted_counts, section_names[s],
                                                   json_integer((json_int_t)omitted[s])) != 0))
            rc = TL_ENOMEM;
    }
    if (rc == 0) {
        doc = object_of(7, "version", json_integer(TL_SUMMARY_VERSION), "ticket",
                        text_value(input->ticket), "move", move_value(move), "title",
                        text_value(input->title), "description",
                        text_value(input->description != NULL ? input->description : ""), "tried",
                        json_integer((json_int_t)tried), "omitted", omitted_counts);
        omitted_counts = NULL; /* taken by the call */
        if (doc == NULL)
            rc = TL_ENOMEM;
    }
    for (int s = 0; rc == 0 && s < TL_SUMMARY_SECTIONS; s++) {
        if (json_object_set_new(doc, section_names[s], sections[s]) != 0)
            rc = TL_ENOMEM;
        sections[s] = NULL;
    }
    if (rc == 0) {
        summary->doc = doc;
        doc = NULL;
        *out = summary;
        summary = NULL;
    }
    json_decref(omitted_counts);
    json_decref(doc);
    for (int s = 0; s < TL_SUMMARY_SECTIONS; s++)
        json_decref(sections[s]);
    for (size_t i = 0; details != NULL && i < input->event_count; i++)
        json_decref(details[i]);
    free(details);
    tl_summary_free(summary);
    return rc;
}

/* ---- a stored summary ----------------------------------------------------------------------- */

static int say(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t why_size, const char *fmt, ...)
{
    if (why != NULL && why_size > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_size, fmt, args);
        va_end(args);
    }
    return TL_EINVAL;
}

int tl_summary_from_text(const char *text, size_t len, tl_summary_t **out, char *why,
                         size_t why_size)
{
    if (text == NULL || len > TL_SUMMARY_TEXT_MAX)
        return say(why, why_size, "the summary is longer than %u bytes", TL_SUMMARY_TEXT_MAX);
    json_error_t error;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (doc == NULL)
        return say(why, why_size, "the summary is not JSON: %s at byte %d", error.text,
                   error.position);
    int rc = 0;
    json_t *version = json_object_get(doc, "version");
    if (!json_is_object(doc))
        rc = say(why, why_size, "the summary is not a JSON object");
    else if (!json_is_integer(version) || json_integer_value(version) != TL_SUMMARY_VERSION)
        rc = say(why, why_size, "the summary's version is not %d", TL_SUMMARY_VERSION);
    for (int s = 0; rc == 0 && s < TL_SUMMARY_SECTIONS; s++)
        if (!json_is_array(json_object_get(doc, section_names[s])))
            rc = say(why, why_size, "the summary has no \"%s\" list", section_names[s]);
    tl_summary_t *summary = rc == 0 ? calloc(1, sizeof *summary) : NULL;
    if (rc == 0 && summary == NULL)
        rc = TL_ENOMEM;
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    summary->doc = doc;
    *out = summary;
    return 0;
}

void tl_summary_free(tl_summary_t *summary)
{
    if (summary == NULL)
        return;
    json_decref(summary->doc);
    free(summary);
}

/* ---- reading a summary ---------------------------------------------------------------------- */

static json_t *section_list(const tl_summary_t *summary, tl_summary_section_t section)
{
    if ((unsigned)section >= TL_SUMMARY_SECTIONS)
        return NULL;
    return json_object_get(summary->doc, section_names[section]);
}

size_t tl_summary_count(const tl_summary_t *summary, tl_summary_section_t section)
{
    return json_array_size(section_list(summary, section));
}

size_t tl_summary_omitted(const tl_summary_t *summary, tl_summary_section_t section)
{
    if ((unsigned)section >= TL_SUMMARY_SECTIONS)
        return 0;
    json_t *count =
        json_object_get(json_object_get(summary->doc, "omitted"), section_names[section]);
    return json_is_integer(count) && json_integer_value(count) > 0
               ? (size_t)json_integer_value(count)
               : 0;
}

size_t tl_summary_tried(const tl_summary_t *summary)
{
    json_t *tried = json_object_get(summary->doc, "tried");
    return json_is_integer(tried) && json_integer_value(tried) > 0
               ? (size_t)json_integer_value(tried)
               : 0;
}

int tl_summary_row(const tl_summary_t *summary, tl_summary_section_t section, size_t index,
                   tl_summary_row_t *row)
{
    json_t *item = json_array_get(section_list(summary, section), index);
    memset(row, 0, sizeof *row);
    if (!json_is_object(item))
        return TL_EINVAL;
    json_t *exit_status = json_object_get(item, "exit_status");
    row->time_ms = json_integer_value(json_object_get(item, "time"));
    row->by = json_string_value(json_object_get(item, "by"));
    row->via =
        json_string_value(json_object_get(item, section == TL_SUMMARY_SELF_HELP ? "event" : "via"));
    row->argv = json_is_array(json_object_get(item, "argv")) ? json_object_get(item, "argv") : NULL;
    row->runbook = json_string_value(json_object_get(item, "runbook"));
    row->args =
        json_is_object(json_object_get(item, "args")) ? json_object_get(item, "args") : NULL;
    row->has_exit_status = json_is_integer(exit_status);
    row->exit_status = (int)json_integer_value(exit_status);
    row->exit_signal = json_string_value(json_object_get(item, "exit_signal"));
    row->ended_by = json_string_value(json_object_get(item, "ended_by"));
    row->sha256 = json_string_value(json_object_get(item, "sha256"));
    row->evidence_name = json_string_value(json_object_get(item, "evidence"));
    row->duration_ms = json_integer_value(json_object_get(item, "duration_ms"));
    row->article = json_string_value(json_object_get(item, "article"));
    row->title = json_string_value(json_object_get(item, "title"));
    row->outcome = json_string_value(json_object_get(item, "outcome"));
    row->text = json_string_value(json_object_get(item, "text"));
    return 0;
}

const json_t *tl_summary_json(const tl_summary_t *summary)
{
    return summary->doc;
}

int tl_summary_canonical(const tl_summary_t *summary, char **text, size_t *len,
                         char sha256[TL_SHA256_HEX_LEN])
{
    char *dumped = json_dumps(summary->doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (dumped == NULL)
        return TL_ENOMEM;
    size_t length = strlen(dumped);
    int rc = tl_sha256_hex(dumped, length, sha256);
    if (rc != 0) {
        free(dumped);
        return rc;
    }
    *text = dumped;
    *len = length;
    return 0;
}

/* ---- the readable form ---------------------------------------------------------------------- */

/* Text from others, escaped on one line; "-" for none. */
static int put_text(tl_buf_t *out, const char *text)
{
    if (text == NULL)
        return tl_buf_put(out, "-", 1);
    return tl_text_escape(out, text, strlen(text), TL_TEXT_LINE);
}

/* Who did it: a technician by name, anyone else as the record names them. */
static int put_by(tl_buf_t *out, const char *by)
{
    if (by != NULL && strncmp(by, "tech:", 5) == 0)
        by += 5;
    return put_text(out, by);
}

static int put_time(tl_buf_t *out, int64_t ms)
{
    char when[TL_UTC_TEXT];
    tl_format_utc(ms, when);
    return tl_buf_printf(out, "%s", when);
}

/* The first 12 hex digits of an evidence hash: enough for `evidence get`. */
static int put_hash(tl_buf_t *out, const char *label, const char *sha256)
{
    if (sha256 == NULL)
        return tl_buf_printf(out, "  no %s", label);
    return tl_buf_printf(out, "  %s %.12s", label, sha256);
}

/* A word of a command as a shell would take it back: quoted when it has to be. */
static int put_word(tl_buf_t *out, const char *word)
{
    int plain = word[0] != '\0';
    for (const char *p = word; *p != '\0' && plain; p++)
        plain = strchr(" \t\n'\"\\$`;&|<>()*?[]#~!{}", *p) == NULL;
    if (plain)
        return put_text(out, word);
    int rc = tl_buf_put(out, "'", 1);
    for (const char *p = word; rc == 0 && *p != '\0';) {
        const char *quote = strchr(p, '\'');
        size_t len = quote != NULL ? (size_t)(quote - p) : strlen(p);
        rc = tl_text_escape(out, p, len, TL_TEXT_LINE);
        if (rc == 0 && quote != NULL)
            rc = tl_buf_put(out, "'\\''", 4);
        p += len + (quote != NULL);
    }
    return rc == 0 ? tl_buf_put(out, "'", 1) : rc;
}

/* "exit 0", "signal TERM", "ended by machine", or "no exit status". */
static int put_ending(tl_buf_t *out, const tl_summary_row_t *row)
{
    int rc = 0;
    if (row->exit_signal != NULL) {
        rc = tl_buf_printf(out, "  signal ");
        if (rc == 0)
            rc = put_text(out, row->exit_signal);
    } else if (row->has_exit_status) {
        rc = tl_buf_printf(out, "  exit %d", row->exit_status);
    } else if (row->ended_by == NULL) {
        rc = tl_buf_printf(out, "  no exit status");
    }
    if (rc == 0 && row->ended_by != NULL) {
        rc = tl_buf_printf(out, "  ended by ");
        if (rc == 0)
            rc = put_text(out, row->ended_by);
    }
    return rc;
}

static int put_row(tl_buf_t *out, tl_summary_section_t section, const tl_summary_row_t *row)
{
    int rc = tl_buf_printf(out, "    ");
    if (rc == 0)
        rc = put_time(out, row->time_ms);
    if (rc == 0 && section != TL_SUMMARY_SELF_HELP && section != TL_SUMMARY_USER_NOTES) {
        rc = tl_buf_printf(out, "  ");
        if (rc == 0)
            rc = put_by(out, row->by);
    }
    switch (section) {
    case TL_SUMMARY_DIAGNOSTICS:
        if (rc == 0)
            rc = tl_buf_printf(out, "  %s",
                               row->via == NULL                  ? "-"
                               : strcmp(row->via, "ticket") == 0 ? "sent with the ticket"
                                                                 : "diag");
        if (rc == 0)
            rc = put_hash(out, "sha256", row->sha256);
        if (rc == 0)
            rc = tl_buf_printf(out, "  ");
        if (rc == 0)
            rc = put_text(out, row->evidence_name);
        break;
    case TL_SUMMARY_COMMANDS:
    case TL_SUMMARY_RUNBOOKS:
        if (rc == 0)
            rc = put_ending(out, row);
        if (rc == 0)
            rc = put_hash(out, "transcript", row->sha256);
        if (rc == 0)
            rc = tl_buf_printf(out, "  ");
        if (rc == 0 && section == TL_SUMMARY_RUNBOOKS) {
            const char *name;
            json_t *value;
            rc = put_text(out, row->runbook);
            json_object_foreach(row->args, name, value) {
                if (rc == 0)
                    rc = tl_buf_printf(out, " ");
                if (rc == 0)
                    rc = put_text(out, name);
                if (rc == 0)
                    rc = tl_buf_printf(out, "=");
                if (rc == 0)
                    rc = put_word(out, json_string_value(value));
            }
        } else if (rc == 0) {
            size_t i;
            json_t *word;
            if (row->argv == NULL)
                rc = tl_buf_printf(out, "-");
            json_array_foreach(row->argv, i, word) {
                if (rc == 0 && i > 0)
                    rc = tl_buf_printf(out, " ");
                if (rc == 0)
                    rc = put_word(out, json_string_value(word));
            }
        }
        break;
    case TL_SUMMARY_SHELLS:
        if (rc == 0)
            rc = put_ending(out, row);
        if (rc == 0 && row->duration_ms > 0)
            rc = tl_buf_printf(out, "  %lldm%02llds", (long long)(row->duration_ms / 60000),
                               (long long)(row->duration_ms / 1000 % 60));
        if (rc == 0)
            rc = put_hash(out, "recording", row->sha256);
        if (rc == 0 && row->evidence_name != NULL) {
            rc = tl_buf_printf(out, "  ");
            if (rc == 0)
                rc = put_text(out, row->evidence_name);
        }
        break;
    case TL_SUMMARY_SELF_HELP:
        if (rc == 0)
            rc = tl_buf_printf(out, "  %s  ",
                               row->via != NULL && strcmp(row->via, "applied") == 0 ? "applied"
                                                                                    : "shown");
        if (rc == 0)
            rc = put_text(out, row->article);
        if (rc == 0 && row->title != NULL) {
            rc = tl_buf_printf(out, "  ");
            if (rc == 0)
                rc = put_text(out, row->title);
        }
        if (rc == 0 && row->outcome != NULL) {
            rc = tl_buf_printf(out, "  outcome: ");
            if (rc == 0)
                rc = put_text(out, row->outcome);
        }
        break;
    case TL_SUMMARY_NOTES:
        if (rc == 0)
            rc = tl_buf_printf(out, ": ");
        if (rc == 0)
            rc = put_text(out, row->text);
        break;
    case TL_SUMMARY_USER_NOTES:
        if (rc == 0)
            rc = tl_buf_printf(out, "  the user wrote: ");
        if (rc == 0)
            rc = put_text(out, row->text);
        break;
    default:
        break;
    }
    return rc == 0 ? tl_buf_printf(out, "\n") : rc;
}

static const char *const section_titles[TL_SUMMARY_SECTIONS] = {
    [TL_SUMMARY_SELF_HELP] = "Self-help",   [TL_SUMMARY_DIAGNOSTICS] = "Diagnostics",
    [TL_SUMMARY_COMMANDS] = "Commands",     [TL_SUMMARY_RUNBOOKS] = "Runbooks",
    [TL_SUMMARY_SHELLS] = "Shell sessions", [TL_SUMMARY_NOTES] = "Notes",
    [TL_SUMMARY_USER_NOTES] = "",
};

static int put_section(tl_buf_t *out, const tl_summary_t *summary, tl_summary_section_t section)
{
    size_t count = tl_summary_count(summary, section),
           omitted = tl_summary_omitted(summary, section);
    int rc = section == TL_SUMMARY_USER_NOTES ? 0
             : count + omitted == 0
                 ? tl_buf_printf(out, "  %s: none\n", section_titles[section])
                 : tl_buf_printf(out, "  %s (%zu):\n", section_titles[section], count + omitted);
    if (rc == 0 && omitted > 0)
        rc = tl_buf_printf(out, "    (%zu earlier, not kept in the summary)\n", omitted);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        tl_summary_row_t row;
        if ((rc = tl_summary_row(summary, section, i, &row)) == 0)
            rc = put_row(out, section, &row);
    }
    return rc;
}

int tl_summary_render(const tl_summary_t *summary, const char *sha256, tl_buf_t *out)
{
    json_t *move = json_object_get(summary->doc, "move");
    int from = (int)json_integer_value(json_object_get(move, "from_tier"));
    int to = (int)json_integer_value(json_object_get(move, "to_tier"));
    int rc = 0;
    if (json_is_object(move)) {
        rc = tl_buf_printf(out, "%s from tier %d to tier %d by ",
                           to > from ? "Escalated" : "De-escalated", from, to);
        if (rc == 0)
            rc = put_by(out, json_string_value(json_object_get(move, "by")));
        if (rc == 0)
            rc = tl_buf_printf(out, " at ");
        if (rc == 0)
            rc = put_time(out, json_integer_value(json_object_get(move, "time")));
        if (rc == 0)
            rc = tl_buf_printf(out, ": ");
        if (rc == 0)
            rc = put_text(out, json_string_value(json_object_get(move, "reason")));
        if (rc == 0)
            rc = tl_buf_printf(out, "\n");
    }
    if (rc == 0)
        rc = tl_buf_printf(out, "%s: %zu",
                           !json_is_object(move) ? "Already tried"
                           : to > from           ? "Tried before this escalation"
                                                 : "Tried before this de-escalation",
                           tl_summary_tried(summary));
    if (rc == 0 && sha256 != NULL)
        rc = tl_buf_printf(out, " (summary sha256:%.64s)", sha256);
    if (rc == 0)
        rc = tl_buf_printf(out, "\n");
    for (int s = 0; rc == 0 && s < TL_SUMMARY_USER_NOTES; s++)
        rc = put_section(out, summary, (tl_summary_section_t)s);
    if (rc == 0)
        rc = tl_buf_printf(out, "  The user's words:\n    title: ");
    if (rc == 0)
        rc = put_text(out, json_string_value(json_object_get(summary->doc, "title")));
    const char *description = json_string_value(json_object_get(summary->doc, "description"));
    if (rc == 0 && description != NULL && description[0] != '\0') {
        rc = tl_buf_printf(out, "\n    description: ");
        if (rc == 0)
            rc = put_text(out, description);
    }
    if (rc == 0)
        rc = tl_buf_printf(out, "\n");
    if (rc == 0)
        rc = put_section(out, summary, TL_SUMMARY_USER_NOTES);
    return rc;
}
