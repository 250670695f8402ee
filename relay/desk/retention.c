/* Retention classes, the configuration's member and the prune decision (relay/desk/retention.h). */
#include "relay/desk/retention.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[TL_RETENTION_CLASS_COUNT] = {
    [TL_RETENTION_RECORDINGS] = "recordings",
    [TL_RETENTION_TRANSCRIPTS] = "transcripts",
    [TL_RETENTION_EVENTS] = "events",
};

const char *tl_retention_class_name(int cls)
{
    return cls >= 0 && cls < TL_RETENTION_CLASS_COUNT ? class_names[cls] : NULL;
}

int tl_retention_class_of(const char *kind)
{
    if (kind != NULL && strcmp(kind, "recording") == 0)
        return TL_RETENTION_RECORDINGS;
    if (kind != NULL && (strcmp(kind, "command") == 0 || strcmp(kind, "runbook") == 0))
        return TL_RETENTION_TRANSCRIPTS;
    return TL_RETENTION_EVENTS;
}

void tl_retention_default(tl_retention_t *out)
{
    for (int i = 0; i < TL_RETENTION_CLASS_COUNT; i++)
        out->days[i] = TL_RETENTION_FOREVER;
}

static int class_index(const char *name)
{
    for (int i = 0; i < TL_RETENTION_CLASS_COUNT; i++)
        if (strcmp(name, class_names[i]) == 0)
            return i;
    return -1;
}

int tl_retention_parse(const json_t *member, tl_retention_t *out, char *why, size_t why_size)
{
    tl_retention_t policy;
    tl_retention_default(&policy);
    if (member == NULL) {
        *out = policy;
        return 0;
    }
    if (!json_is_object(member)) {
        snprintf(why, why_size,
                 "retention: wants an object of classes (recordings, transcripts, events)");
        return TL_EINVAL;
    }
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)member, name, value) {
        int cls = class_index(name);
        if (cls < 0) {
            snprintf(why, why_size,
                     "retention.%.64s: unknown class (recordings, transcripts or events)", name);
            return TL_EINVAL;
        }
        if (json_is_string(value) && strcmp(json_string_value(value), "forever") == 0) {
            policy.days[cls] = TL_RETENTION_FOREVER;
            continue;
        }
        if (json_is_integer(value) && json_integer_value(value) >= 1 &&
            json_integer_value(value) <= TL_RETENTION_DAYS_MAX) {
            policy.days[cls] = (int)json_integer_value(value);
            continue;
        }
        char shown[48];
        if (json_is_integer(value))
            snprintf(shown, sizeof shown, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        else
            snprintf(shown, sizeof shown, "%s",
                     json_is_string(value)   ? "other text"
                     : json_is_real(value)   ? "a fraction"
                     : json_is_object(value) ? "an object"
                     : json_is_array(value)  ? "an array"
                                             : "true, false or null");
        snprintf(why, why_size,
                 "retention.%s: wants a whole number of days 1..%d or \"forever\", not %s", name,
                 TL_RETENTION_DAYS_MAX, shown);
        return TL_EINVAL;
    }
    *out = policy;
    return 0;
}

int tl_retention_expired(const tl_retention_t *policy, const tl_retention_ref_t *ref,
                         int64_t now_ms)
{
    int days = policy->days[tl_retention_class_of(ref->kind)];
    return days != TL_RETENTION_FOREVER && ref->created_ms + days * TL_RETENTION_DAY_MS <= now_ms;
}

/* A reference's place, sorted by its hash. */
struct place {
    const char *hash;
    size_t index;
};

static int by_hash(const void *a, const void *b)
{
    const struct place *x = a, *y = b;
    int order = strcmp(x->hash, y->hash);
    return order != 0 ? order : (x->index > y->index) - (x->index < y->index);
}

int tl_retention_decide(const tl_retention_t *policy, const tl_retention_ref_t *refs, size_t count,
                        int64_t now_ms, int *prune)
{
    for (size_t i = 0; i < count; i++)
        prune[i] = 0;
    if (count == 0)
        return 0;
    struct place *order = malloc(count * sizeof *order);
    if (order == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++)
        order[i] = (struct place){refs[i].hash, i};
    qsort(order, count, sizeof *order, by_hash);
    /* Each run of one hash: the payload goes only if every reference in it lets it go. */
    for (size_t start = 0, end; start < count; start = end) {
        int goes = 1;
        for (end = start; end < count && strcmp(order[end].hash, order[start].hash) == 0; end++) {
            const tl_retention_ref_t *ref = &refs[order[end].index];
            if (ref->held || !tl_retention_expired(policy, ref, now_ms))
                goes = 0;
        }
        for (size_t k = start; goes && k < end; k++)
            prune[order[k].index] = !refs[order[k].index].pruned;
    }
    free(order);
    return 0;
}

/* The event's details member name, as text; NULL when it is not there. */
static const char *event_text(const tl_ticket_event_row_t *event, const char *name, json_t **doc)
{
    *doc = json_loads(event->details, 0, NULL);
    return json_string_value(json_object_get(*doc, name));
}

int tl_retention_held(const tl_ticket_event_rows_t *events, size_t *which)
{
    for (size_t i = events->count; i-- > 0;) {
        const tl_ticket_event_row_t *event = &events->rows[i];
        if (strcmp(event->kind, TL_RETENTION_EVENT_HOLD) != 0)
            continue;
        json_t *doc = NULL;
        const char *hold = event_text(event, "hold", &doc);
        int held = hold != NULL && strcmp(hold, "on") == 0;
        json_decref(doc);
        if (which != NULL)
            *which = i;
        return held;
    }
    return 0;
}

int tl_retention_pruned(const tl_ticket_event_rows_t *events, const char *hash)
{
    for (size_t i = 0; i < events->count; i++) {
        if (strcmp(events->rows[i].kind, TL_RETENTION_EVENT_PRUNED) != 0)
            continue;
        json_t *doc = NULL;
        const char *named = event_text(&events->rows[i], "sha256", &doc);
        int same = named != NULL && strcmp(named, hash) == 0;
        json_decref(doc);
        if (same)
            return 1;
    }
    return 0;
}
