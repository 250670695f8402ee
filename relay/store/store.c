/*
 * The part of the store interface (relay/store/store.h) that is the same whatever the backend:
 * the checks every backend applies to what it is given, and the row lists it hands out. The
 * SQLite backend is relay/store/store_sqlite*.c.
 */
#include "relay/store/store.h"
#include "proto/err.h"
#include "relay/store/store_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tl__store_text_ok(const char *text, size_t max_len)
{
    return text != NULL && strlen(text) <= max_len;
}

int tl__store_hex64(const char *text)
{
    if (text == NULL || strlen(text) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int tl__store_json_object(const char *text)
{
    json_t *value = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int ok = json_is_object(value);
    json_decref(value);
    return ok;
}

int tl_store_user_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > TL_STORE_MAX_USER || !((name[0] >= 'a' && name[0] <= 'z')))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* ---- freeing what the store handed out: rows own their strings ------------------------------ */

static void release(const char *text)
{
    free((void *)text);
}

void tl_device_rows_free(tl_device_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].fingerprint);
        release(list->rows[i].hostname);
        release(list->rows[i].os);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_ticket_row_clear(tl_ticket_row_t *row)
{
    if (row == NULL)
        return;
    release(row->hostname);
    release(row->title);
    release(row->description);
    release(row->status);
    release(row->assignee);
    release(row->category);
    release(row->fingerprint);
    release(row->vendor);
    release(row->vendor_case);
    memset(row, 0, sizeof *row);
}

void tl_ticket_change_rows_free(tl_ticket_change_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].field);
        release(list->rows[i].value);
        release(list->rows[i].actor);
        release(list->rows[i].reason);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_ticket_rows_free(tl_ticket_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++)
        tl_ticket_row_clear(&list->rows[i]);
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_ticket_event_rows_free(tl_ticket_event_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].actor);
        release(list->rows[i].kind);
        release(list->rows[i].details);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_evidence_rows_free(tl_evidence_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].hash);
        release(list->rows[i].kind);
        release(list->rows[i].name);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_user_rows_free(tl_user_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].name);
        release(list->rows[i].role);
        release(list->rows[i].public_key);
        release(list->rows[i].fingerprint);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_audit_outbox_rows_free(tl_audit_outbox_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].hash);
        release(list->rows[i].line);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}

void tl_audit_pending_rows_free(tl_audit_pending_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        release(list->rows[i].actor);
        release(list->rows[i].action);
        release(list->rows[i].subject);
        release(list->rows[i].details);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}
