/*
 * TRANSITIONAL (relay/store/store_json.h): the old store names of three desk rules, for the
 * callers not yet ported. They live here, not in relay/store/, because the store may not know
 * the desk's rules. Delete with relay/store/store_json.{c,h}.
 */
#include "relay/desk/tickets.h"
#include "relay/store/store_json.h"

int tl_store_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created)
{
    return tl_ticket_create(store, ticket, now_ms, ticket_id, created);
}

int tl_store_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee,
                           const char *status, int64_t now_ms)
{
    return tl_ticket_update(store, ticket_id, assignee, status, now_ms);
}

int tl_store_status_valid(const char *status)
{
    return tl_ticket_status_valid(status);
}
