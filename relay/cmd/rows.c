/*
 * The store's rows as the commands show them (relay/cmd/rows.h): typed rows read from the store,
 * made into the JSON objects of --json output and of the tables built from them.
 */
#include "relay/cmd/rows.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text as the JSON results always had it: null for none; stray bytes shown as \xHH. */
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

static json_t *id_value(char prefix, int64_t id)
{
    char text[TL_ID_TEXT];
    return json_string(tl_id_format(text, prefix, id));
}

/* Details from their stored text; {} when it does not parse (as it always was). */
static json_t *details_value(const char *text)
{
    json_t *parsed = text != NULL ? json_loads(text, 0, NULL) : NULL;
    return parsed != NULL ? parsed : json_object();
}

/* Sets key to value (taken) on object; TL_ENOMEM if either is missing. */
static int put(json_t *object, const char *key, json_t *value)
{
    if (object == NULL || value == NULL || json_object_set_new(object, key, value) != 0) {
        json_decref(value);
        return TL_ENOMEM;
    }
    return 0;
}

/* Appends object (taken) to array, or releases it and says why not. */
static int append(json_t *array, json_t *object, int rc)
{
    if (rc == 0 && json_array_append_new(array, object) == 0)
        return 0;
    if (rc != 0)
        json_decref(object);
    return rc != 0 ? rc : TL_ENOMEM;
}

/* The JSON array of count rows of size bytes at rows, each made an object by object(). */
static int array_of(const void *rows, size_t count, size_t size, json_t *(*object)(const void *),
                    json_t **out)
{
    json_t *array = json_array();
    int rc = array != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        json_t *item = object((const char *)rows + i * size);
        rc = append(array, item, item != NULL ? 0 : TL_ENOMEM);
    }
    if (rc != 0) {
        json_decref(array);
        return rc;
    }
    *out = array;
    return 0;
}

static json_t *device_object(const void *item)
{
    const tl_device_row_t *row = item;
    json_t *o = json_object();
    int rc = put(o, "id", id_value(TL_ID_DEVICE, row->id));
    if (rc == 0)
        rc = put(o, "fingerprint", text_value(row->fingerprint));
    if (rc == 0)
        rc = put(o, "hostname", text_value(row->hostname));
    if (rc == 0)
        rc = put(o, "os", text_value(row->os));
    if (rc == 0)
        rc = put(o, "first_seen", json_integer(row->first_seen));
    if (rc == 0)
        rc = put(o, "last_seen", json_integer(row->last_seen));
    if (rc == 0)
        rc = put(o, "online", json_boolean(row->online));
    if (rc != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int tl_rows_devices(tl_store_t *store, json_t **out)
{
    tl_device_rows_t list;
    int rc = tl_store_devices_read(store, &list);
    if (rc != 0)
        return rc;
    rc = array_of(list.rows, list.count, sizeof *list.rows, device_object, out);
    tl_device_rows_free(&list);
    return rc;
}

static json_t *ticket_object(const void *item)
{
    const tl_ticket_row_t *row = item;
    json_t *o = json_object();
    int rc = put(o, "id", id_value(TL_ID_TICKET, row->id));
    if (rc == 0)
        rc = put(o, "device", id_value(TL_ID_DEVICE, row->device_id));
    if (rc == 0)
        rc = put(o, "hostname", text_value(row->hostname));
    if (rc == 0)
        rc = put(o, "title", text_value(row->title));
    if (rc == 0)
        rc = put(o, "description", text_value(row->description));
    if (rc == 0)
        rc = put(o, "tier", json_integer(row->tier));
    if (rc == 0)
        rc = put(o, "status", text_value(row->status));
    if (rc == 0)
        rc = put(o, "assignee", text_value(row->assignee));
    if (rc == 0)
        rc = put(o, "created", json_integer(row->created));
    if (rc == 0)
        rc = put(o, "updated", json_integer(row->updated));
    char severity[8];
    snprintf(severity, sizeof severity, "S%d",
             row->severity >= 1 && row->severity <= 4 ? row->severity : 3);
    if (rc == 0)
        rc = put(o, "severity", json_string(severity));
    if (rc == 0)
        rc = put(o, "category", text_value(row->category != NULL ? row->category : "other"));
    /* The vendor's case (docs/desk.md "Vendor hand-off and evidence bundles"). */
    if (rc == 0)
        rc = put(o, "vendor", text_value(row->vendor));
    if (rc == 0)
        rc = put(o, "vendor_case", text_value(row->vendor_case));
    if (rc == 0)
        rc = put(o, "follow_up", row->follow_up != 0 ? json_integer(row->follow_up) : json_null());
    if (rc != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *tl_rows_ticket_object(const tl_ticket_row_t *row)
{
    return ticket_object(row);
}

int tl_rows_tickets(tl_store_t *store, const tl_ticket_filter_t *filter, json_t **out)
{
    tl_ticket_rows_t list;
    int rc = tl_store_tickets_read(store, filter, &list);
    if (rc != 0)
        return rc;
    rc = array_of(list.rows, list.count, sizeof *list.rows, ticket_object, out);
    tl_ticket_rows_free(&list);
    return rc;
}

static int ticket_fields(tl_store_t *store, int64_t ticket_id, json_t **out)
{
    tl_ticket_row_t row;
    int rc = tl_store_ticket_read(store, ticket_id, &row);
    if (rc != 0)
        return rc;
    json_t *ticket = ticket_object(&row);
    tl_ticket_row_clear(&row);
    if (ticket == NULL)
        return TL_ENOMEM;
    *out = ticket;
    return 0;
}

static json_t *events_array(const tl_ticket_event_rows_t *list)
{
    json_t *array = json_array();
    int rc = array != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < list->count; i++) {
        const tl_ticket_event_row_t *row = &list->rows[i];
        json_t *o = json_object();
        rc = put(o, "time", json_integer(row->time));
        if (rc == 0)
            rc = put(o, "actor", text_value(row->actor));
        if (rc == 0)
            rc = put(o, "kind", text_value(row->kind));
        if (rc == 0)
            rc = put(o, "details", details_value(row->details));
        rc = append(array, o, rc);
    }
    if (rc != 0) {
        json_decref(array);
        array = NULL;
    }
    return array;
}

static json_t *evidence_array(const tl_evidence_rows_t *list)
{
    json_t *array = json_array();
    int rc = array != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < list->count; i++) {
        const tl_evidence_row_t *row = &list->rows[i];
        json_t *o = json_object();
        rc = put(o, "hash", text_value(row->hash));
        if (rc == 0)
            rc = put(o, "kind", text_value(row->kind));
        if (rc == 0)
            rc = put(o, "name", text_value(row->name));
        if (rc == 0)
            rc = put(o, "size", json_integer((json_int_t)row->size));
        if (rc == 0)
            rc = put(o, "created", json_integer(row->created));
        rc = append(array, o, rc);
    }
    if (rc != 0) {
        json_decref(array);
        array = NULL;
    }
    return array;
}

int tl_rows_ticket(tl_store_t *store, int64_t ticket_id, json_t **out)
{
    json_t *ticket = NULL;
    tl_ticket_event_rows_t events = {0};
    tl_evidence_rows_t evidence = {0};
    int rc = ticket_fields(store, ticket_id, &ticket);
    if (rc != 0)
        return rc;
    if ((rc = tl_store_ticket_events_read(store, ticket_id, &events)) != 0 ||
        (rc = tl_store_ticket_evidence_read(store, ticket_id, &evidence)) != 0)
        goto out;
    if ((rc = put(ticket, "events", events_array(&events))) != 0 ||
        (rc = put(ticket, "evidence", evidence_array(&evidence))) != 0)
        goto out;
    *out = ticket;
    ticket = NULL;
out:
    json_decref(ticket);
    tl_ticket_event_rows_free(&events);
    tl_evidence_rows_free(&evidence);
    return rc;
}

static json_t *user_object(const void *item)
{
    const tl_user_row_t *row = item;
    json_t *o = json_object();
    int rc = put(o, "id", json_integer(row->id));
    if (rc == 0)
        rc = put(o, "name", text_value(row->name));
    if (rc == 0)
        rc = put(o, "role", text_value(row->role));
    if (rc == 0)
        rc = put(o, "public_key", text_value(row->public_key));
    if (rc == 0)
        rc = put(o, "fingerprint", text_value(row->fingerprint));
    if (rc == 0)
        rc = put(o, "disabled", json_boolean(row->disabled));
    if (rc == 0)
        rc = put(o, "lead", json_boolean(row->lead));
    if (rc == 0)
        rc = put(o, "created", json_integer(row->created));
    if (rc == 0)
        rc = put(o, "expires", row->expires != 0 ? json_integer(row->expires) : json_null());
    if (rc != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int tl_rows_users(tl_store_t *store, json_t **out)
{
    tl_user_rows_t list;
    int rc = tl_store_users_read(store, &list);
    if (rc != 0)
        return rc;
    rc = array_of(list.rows, list.count, sizeof *list.rows, user_object, out);
    tl_user_rows_free(&list);
    return rc;
}
