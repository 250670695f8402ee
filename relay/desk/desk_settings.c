/* The desk's settings in relay.conf (relay/desk/desk_settings.h). */
#include "relay/desk/desk_settings.h"

#include "proto/err.h"
#include "proto/format.h"
#include "relay/desk/retention.h"
#include "relay/desk/sla.h"
#include "relay/desk/calendar.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char tl_desk_config_default[] =
    "{\n"
    "  \"sla\": {\n"
    "    \"calendar\": {\"24x7\": true},\n"
    "    \"targets\": {\n"
    "      \"S1\": {\"first_response\": \"30m\", \"resolution\": \"4h\"},\n"
    "      \"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\"},\n"
    "      \"S3\": {\"first_response\": \"4h\", \"resolution\": \"24h\"},\n"
    "      \"S4\": {\"first_response\": \"6h\", \"resolution\": \"72h\"}\n"
    "    }\n"
    "  }\n"
    "}\n";

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
#define DAYS 7

/* Every key this module reads, and the member of desk.json each one says. */
static const struct desk_key {
    const char *key;
    const char *member; /* the parsers' name of it, the longest first where one holds another */
} desk_keys[] = {
    {"sla_zone", "sla.calendar.zone"},
    {"sla_holidays", "sla.calendar.holidays"},
    {"sla_hours", "sla.calendar"},
    {"sla_s1", "sla.targets.S1"},
    {"sla_s2", "sla.targets.S2"},
    {"sla_s3", "sla.targets.S3"},
    {"sla_s4", "sla.targets.S4"},
    {"sla_vendor", "sla.vendor"},
    {"retention_recordings", "retention.recordings"},
    {"retention_transcripts", "retention.transcripts"},
    {"retention_events", "retention.events"},
};
#define DESK_KEYS (sizeof desk_keys / sizeof desk_keys[0])

/* The value of key and where it was said; NULL when it is not set. */
static const char *value_of(const tl_settings_t *settings, const char *key, char *at,
                            size_t at_size)
{
    int index = settings != NULL ? tl_settings_index(settings, key) : -1;
    if (index < 0 || !settings->value[index].set)
        return NULL;
    tl_settings_origin(settings, index, at, at_size);
    return settings->value[index].text;
}

/* Splits text at sep into trimmed, non-empty parts, written into copy; the count, or -1 if more
 * than most. */
static int split(const char *text, char sep, char *copy, size_t copy_size, char **parts, int most)
{
    tl_format(copy, copy_size, "%s", text);
    int count = 0;
    char *p = copy;
    while (p != NULL) {
        char *end = sep == ' ' ? strpbrk(p, " \t") : strchr(p, sep);
        if (end != NULL)
            *end++ = '\0';
        while (isspace((unsigned char)*p))
            p++;
        size_t len = strlen(p);
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            p[--len] = '\0';
        if (len > 0) {
            if (count == most)
                return -1;
            parts[count++] = p;
        }
        p = end;
    }
    return count;
}

static int day_index(const char *name, size_t len)
{
    for (int i = 0; i < DAYS; i++)
        if (strlen(day_names[i]) == len && strncmp(day_names[i], name, len) == 0)
            return i;
    return -1;
}

/* "mon-fri,sun" into days[]; which group said each day, to name a day given twice. */
static int read_days(const char *text, int group, int said[DAYS], char *why, size_t why_size)
{
    char copy[256], *items[DAYS * 2];
    int count = split(text, ',', copy, sizeof copy, items, DAYS * 2);
    if (count <= 0) {
        tl_format(why, why_size, "'%.64s' names no days (mon, tue, wed, thu, fri, sat, sun)", text);
        return TL_EINVAL;
    }
    for (int i = 0; i < count; i++) {
        const char *dash = strchr(items[i], '-');
        size_t first_len = dash != NULL ? (size_t)(dash - items[i]) : strlen(items[i]);
        int first = day_index(items[i], first_len);
        int last = dash != NULL ? day_index(dash + 1, strlen(dash + 1)) : first;
        if (first < 0 || last < 0) {
            tl_format(why, why_size,
                      "'%.64s' is not a day or a range of days (mon, tue, wed, thu, fri, sat, sun; "
                      "mon-fri)",
                      items[i]);
            return TL_EINVAL;
        }
        if (last < first) {
            tl_format(why, why_size,
                      "'%.64s' runs backwards: a week here starts on mon (write %s-sun,mon-%s)",
                      items[i], day_names[first], day_names[last]);
            return TL_EINVAL;
        }
        for (int d = first; d <= last; d++) {
            if (said[d] != 0) {
                tl_format(why, why_size,
                          "%s is given twice (group %d and group %d): give each day "
                          "once",
                          day_names[d], said[d], group);
                return TL_EINVAL;
            }
            said[d] = group;
        }
    }
    return 0;
}

/* "HH:MM-HH:MM ..." words from parts[from..count) as an array of strings. */
static json_t *intervals(char **parts, int from, int count)
{
    json_t *array = json_array();
    for (int i = from; array != NULL && i < count; i++)
        if (json_array_append_new(array, json_string(parts[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    return array;
}

/* sla_hours into the calendar: "24x7", or groups "DAYS HOURS..." separated by ';'. */
static int read_hours(const char *text, json_t *calendar, char *why, size_t why_size)
{
    if (strcmp(text, "24x7") == 0)
        return json_object_set_new(calendar, "24x7", json_true()) == 0 ? 0 : TL_ENOMEM;
    /* Hours are in a zone's wall-clock time: UTC until sla_zone says another. */
    if (json_object_set_new(calendar, "zone", json_string("UTC")) != 0)
        return TL_ENOMEM;
    char copy[TL_SETTING_VALUE_MAX], *groups[DAYS];
    int count = split(text, ';', copy, sizeof copy, groups, DAYS);
    if (count < 0) {
        tl_format(why, why_size, "more than %d groups of days", DAYS);
        return TL_EINVAL;
    }
    if (count == 0) {
        tl_format(why, why_size, "wants 24x7, or days and hours: mon-fri 09:00-17:00");
        return TL_EINVAL;
    }
    int said[DAYS] = {0};
    json_t *hours = json_object();
    if (hours == NULL || json_object_set_new(calendar, "hours", hours) != 0)
        return TL_ENOMEM;
    for (int g = 0; g < count; g++) {
        char words_copy[TL_SETTING_VALUE_MAX], *words[16];
        int n = split(groups[g], ' ', words_copy, sizeof words_copy, words, 16);
        if (n < 0) {
            tl_format(why, why_size, "group %d holds more than 15 intervals", g + 1);
            return TL_EINVAL;
        }
        if (n < 2) {
            tl_format(why, why_size,
                      "group %d ('%.64s') wants days then hours: mon-fri 09:00-17:00", g + 1,
                      groups[g]);
            return TL_EINVAL;
        }
        int before[DAYS];
        memcpy(before, said, sizeof before);
        int rc = read_days(words[0], g + 1, said, why, why_size);
        if (rc != 0)
            return rc;
        for (int d = 0; d < DAYS; d++) {
            if (said[d] == before[d])
                continue;
            json_t *list = intervals(words, 1, n);
            if (list == NULL || json_object_set_new(hours, day_names[d], list) != 0)
                return TL_ENOMEM;
        }
    }
    return 0;
}

/* sla_holidays: "DATE[ HOURS...], ..." into the calendar's holidays. */
static int read_holidays(const char *text, json_t *calendar, char *why, size_t why_size)
{
    enum { MOST = 128 };
    char copy[TL_SETTING_VALUE_MAX], *items[MOST];
    int count = split(text, ',', copy, sizeof copy, items, MOST);
    if (count < 0) {
        tl_format(why, why_size, "more than %d dates (keep longer lists in DATA/desk.json)", MOST);
        return TL_EINVAL;
    }
    json_t *list = json_array();
    if (list == NULL || json_object_set_new(calendar, "holidays", list) != 0)
        return TL_ENOMEM;
    for (int i = 0; i < count; i++) {
        char words_copy[512], *words[16];
        int n = split(items[i], ' ', words_copy, sizeof words_copy, words, 16);
        if (n < 0) {
            tl_format(why, why_size, "'%.64s' holds more than 15 intervals", items[i]);
            return TL_EINVAL;
        }
        json_t *entry =
            n == 1 ? json_string(words[0])
                   : json_pack("{s:s, s:o*}", "date", words[0], "hours", intervals(words, 1, n));
        if (entry == NULL || json_array_append_new(list, entry) != 0)
            return TL_ENOMEM;
    }
    return 0;
}

/* sla_sN: "FIRST RESOLUTION[, tierN FIRST|- RESOLUTION|-]..." over the default's targets. */
static int read_target(const char *text, json_t *targets, const char *severity, char *why,
                       size_t why_size)
{
    char copy[TL_SETTING_VALUE_MAX], *parts[5];
    int count = split(text, ',', copy, sizeof copy, parts, 5);
    if (count < 0) {
        tl_format(why, why_size, "more than 5 parts (the targets, then tier1 .. tier4)");
        return TL_EINVAL;
    }
    if (count == 0) {
        tl_format(why, why_size, "wants the first response and resolution targets: 30m 4h");
        return TL_EINVAL;
    }
    json_t *target = json_object();
    if (target == NULL || json_object_set_new(targets, severity, target) != 0)
        return TL_ENOMEM;
    for (int i = 0; i < count; i++) {
        char words_copy[256], *words[4];
        int n = split(parts[i], ' ', words_copy, sizeof words_copy, words, 4);
        int tier = i > 0;
        if (n != 2 + tier || (tier && strncmp(words[0], "tier", 4) != 0)) {
            if (tier)
                tl_format(why, why_size,
                          "'%.64s' wants a tier and its two targets, - to keep one: tier3 - 16h",
                          parts[i]);
            else
                tl_format(why, why_size,
                          "'%.64s' wants the first response and resolution targets: 30m 4h",
                          parts[i]);
            return TL_EINVAL;
        }
        json_t *into = target;
        if (tier) {
            if (strcmp(words[1], "-") == 0 && strcmp(words[2], "-") == 0) {
                tl_format(why, why_size, "'%.64s' changes nothing (both targets are -)", parts[i]);
                return TL_EINVAL;
            }
            into = json_object();
            if (into == NULL || json_object_set_new(target, words[0], into) != 0)
                return TL_ENOMEM;
        }
        static const char *const names[] = {"first_response", "resolution"};
        for (int k = 0; k < 2; k++) {
            const char *word = words[tier + k];
            if (strcmp(word, "-") == 0 && tier)
                continue;
            if (json_object_set_new(into, names[k], json_string(word)) != 0)
                return TL_ENOMEM;
        }
    }
    return 0;
}

/* retention_CLASS: a whole number of days or "forever"; the parser checks the range. */
static int read_retention(const char *text, json_t *retention, const char *cls, char *why,
                          size_t why_size)
{
    json_t *value = NULL;
    size_t len = strlen(text);
    if (strcmp(text, "forever") == 0) {
        value = json_string("forever");
    } else if (len > 0 && len <= 9 && strspn(text, "0123456789") == len) {
        value = json_integer(strtol(text, NULL, 10));
    } else {
        tl_format(why, why_size, "wants a whole number of days 1..36500 or forever, not '%.64s'",
                  text);
        return TL_EINVAL;
    }
    return value != NULL && json_object_set_new(retention, cls, value) == 0 ? 0 : TL_ENOMEM;
}

/* The built-in default's "sla" member, to be changed key by key. */
static json_t *default_sla(void)
{
    json_t *document = json_loads(tl_desk_config_default, 0, NULL);
    json_t *sla = document != NULL ? json_deep_copy(json_object_get(document, "sla")) : NULL;
    json_decref(document);
    return sla;
}

/* Applies one key's value; why without FILE:LINE and the key. */
static int apply(const char *key, const char *text, tl_desk_settings_t *out, char *why,
                 size_t why_size)
{
    if (strncmp(key, "retention_", 10) == 0) {
        if (out->retention == NULL && (out->retention = json_object()) == NULL)
            return TL_ENOMEM;
        return read_retention(text, out->retention, key + 10, why, why_size);
    }
    if (out->sla == NULL && (out->sla = default_sla()) == NULL)
        return TL_ENOMEM;
    json_t *calendar = json_object_get(out->sla, "calendar");
    if (strcmp(key, "sla_zone") == 0)
        return json_object_set_new(calendar, "zone", json_string(text)) == 0 ? 0 : TL_ENOMEM;
    if (strcmp(key, "sla_hours") == 0) {
        json_object_del(calendar, "24x7");
        return read_hours(text, calendar, why, why_size);
    }
    if (strcmp(key, "sla_holidays") == 0) {
        if (json_object_get(calendar, "24x7") != NULL) {
            tl_format(why, why_size,
                      "holidays need working hours: set sla_hours too (every "
                      "hour counts on a 24x7 desk)");
            return TL_EINVAL;
        }
        return read_holidays(text, calendar, why, why_size);
    }
    if (strcmp(key, "sla_vendor") == 0)
        return json_object_set_new(out->sla, "vendor", json_string(text)) == 0 ? 0 : TL_ENOMEM;
    char severity[3] = {'S', key[5], '\0'}; /* sla_sN */
    return read_target(text, json_object_get(out->sla, "targets"), severity, why, why_size);
}

int tl_desk_settings_build(const tl_settings_t *settings, tl_desk_settings_t *out, char *why,
                           size_t why_size)
{
    memset(out, 0, sizeof *out);
    /* sla_hours before sla_holidays and sla_zone: it replaces the default's 24x7. */
    static const int order[] = {2, 0, 1, 3, 4, 5, 6, 7, 8, 9, 10};
    int sla_line = 0, retention_line = 0;
    for (size_t i = 0; i < DESK_KEYS; i++) {
        const char *key = desk_keys[order[i]].key;
        char at[TL_SETTINGS_PATH_MAX + 16], reason[512] = "";
        const char *text = value_of(settings, key, at, sizeof at);
        if (text == NULL)
            continue;
        /* The earliest line of each kind names it. */
        int retention = strncmp(key, "retention_", 10) == 0;
        int line = settings->value[tl_settings_index(settings, key)].line;
        int *first_line = retention ? &retention_line : &sla_line;
        if (*first_line == 0 || line < *first_line) {
            *first_line = line;
            tl_format(retention ? out->retention_at : out->sla_at, sizeof out->sla_at, "%s", at);
        }
        int rc = apply(key, text, out, reason, sizeof reason);
        if (rc != 0) {
            if (rc == TL_ENOMEM)
                tl_format(why, why_size, "%s: %s: out of memory", at, key);
            else
                tl_format(why, why_size, "%s: %s: %s", at, key, reason);
            tl_desk_settings_free(out);
            return rc;
        }
    }
    return 0;
}

void tl_desk_settings_why(const tl_settings_t *settings, const char *message, char *why,
                          size_t why_size)
{
    const char *colon = strstr(message, ": ");
    size_t path_len = colon != NULL ? (size_t)(colon - message) : 0;
    const struct desk_key *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < DESK_KEYS; i++) {
        size_t len = strlen(desk_keys[i].member);
        if (len <= path_len && len > best_len && strncmp(message, desk_keys[i].member, len) == 0 &&
            (len == path_len || message[len] == '.' || message[len] == '['))
            best = &desk_keys[i], best_len = len;
    }
    char at[TL_SETTINGS_PATH_MAX + 16] = "";
    const char *key = best != NULL ? best->key : NULL;
    if (best == NULL || value_of(settings, best->key, at, sizeof at) == NULL) {
        /* A member no key set (the default's part): named at the first key of its kind. */
        int retention = strncmp(message, "retention", 9) == 0;
        const char *first = NULL;
        for (size_t i = 0; i < DESK_KEYS && first == NULL; i++)
            if ((strncmp(desk_keys[i].key, "retention_", 10) == 0) == retention &&
                value_of(settings, desk_keys[i].key, at, sizeof at) != NULL)
                first = desk_keys[i].key;
        if (first == NULL)
            key = NULL;
        else if (key == NULL)
            key = first, best_len = 0;
    }
    /* What the member path says past the key, without indexes: "wed" of "hours.wed[1]". */
    char rest[128] = "";
    size_t used = 0;
    for (size_t i = best_len; i < path_len && used + 1 < sizeof rest; i++) {
        char c = message[i];
        if (c == '[') {
            while (i < path_len && message[i] != ']')
                i++;
            continue;
        }
        if (c == '.' && used == 0)
            continue;
        rest[used++] = c;
    }
    rest[used] = '\0';
    /* "hours.wed" under sla_hours reads better as "wed". */
    const char *shown = strncmp(rest, "hours.", 6) == 0 ? rest + 6 : rest;
    tl_format(why, why_size, "%s: %s: %s%s%s", at, key, shown, shown[0] != '\0' ? ": " : "",
              colon + 2);
}

int tl_desk_settings_check(const tl_settings_t *settings, char *why, size_t why_size)
{
    tl_desk_settings_t desk;
    char message[1024] = "";
    int rc = tl_desk_settings_build(settings, &desk, why, why_size);
    if (rc != 0)
        return rc;
    if (desk.sla != NULL) {
        tl_sla_config_t *sla = NULL;
        rc = tl_sla_config_parse(desk.sla, tl_zone_lookup_files, NULL, &sla, message,
                                 sizeof message);
        tl_sla_config_free(sla);
    }
    if (rc == 0 && desk.retention != NULL) {
        tl_retention_t retention;
        rc = tl_retention_parse(desk.retention, &retention, message, sizeof message);
    }
    if (rc != 0)
        tl_desk_settings_why(settings, message, why, why_size);
    tl_desk_settings_free(&desk);
    return rc;
}

void tl_desk_settings_free(tl_desk_settings_t *desk)
{
    json_decref(desk->sla);
    json_decref(desk->retention);
    desk->sla = NULL;
    desk->retention = NULL;
}
