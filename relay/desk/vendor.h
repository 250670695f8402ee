/*
 * Tier 4: outside vendors (docs/desk.md "Vendor hand-off and evidence bundles"). The desk's
 * rules for a ticket handed to a vendor and for the vendors' own accounts:
 *
 *   - a hand-off names the vendor and its case reference, and may set when to chase the vendor
 *     (the follow-up), given as a duration from now or a date;
 *   - a vendor account (role tier4) sees a ticket only while it is bound to it
 *     (tl_store_grant_set) and neither the binding nor the account has expired; any other
 *     ticket does not exist for it, so nothing tells it which tickets there are.
 *
 * The parsing is pure; tl_vendor_ticket_access reads the store, so it runs where the store may be
 * used (the storage worker, an admin command).
 */
#ifndef TL_VENDOR_H
#define TL_VENDOR_H

#include "relay/store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Longest vendor name and case reference (the store's columns hold 128 bytes). */
#define TL_VENDOR_TEXT_MAX 128
/* The furthest a follow-up or an expiry may lie ahead: ten years. */
#define TL_VENDOR_AHEAD_MAX_MS (3650LL * 86400000)

/* How a date without a time is read: at the start of that day (a follow-up is due on it) or at
 * its end (an account works through it). */
enum tl_vendor_day { TL_VENDOR_DAY_START, TL_VENDOR_DAY_END };

/*
 * A UTC date ("2026-12-31", read as day says) or time ("2026-12-31T17:00Z",
 * "2026-12-31T17:00:30Z") into *out_ms, with no rule on when it lies (the report's period).
 * TL_EINVAL for anything else.
 */
int tl_vendor_date_parse(const char *text, enum tl_vendor_day day, int64_t *out_ms);

/*
 * A time given as a duration from now_ms ("2d", "36h", "90m", "1w", "1d12h"; at least a
 * minute) or a UTC date ("2026-12-31", read as day says) or time ("2026-12-31T17:00Z",
 * "2026-12-31T17:00:30Z"), into *out_ms. It must lie after now_ms and at most
 * TL_VENDOR_AHEAD_MAX_MS ahead. TL_EINVAL with *problem saying why ("is in the past", "is not
 * a duration like 2d or 36h, nor a date YYYY-MM-DD", ...) otherwise.
 */
int tl_vendor_when_parse(const char *text, int64_t now_ms, enum tl_vendor_day day, int64_t *out_ms,
                         const char **problem);

/*
 * 1 if text may be a vendor's name or a case reference: 1..TL_VENDOR_TEXT_MAX bytes of valid
 * UTF-8 without control characters (it is shown on one line).
 */
int tl_vendor_text_valid(const char *text);

/*
 * Whether the account user, of role (enum tl_role), may see the ticket at now_ms: 0 and
 * *until_ms 0 for roles that see every ticket (the ticket is not looked at); 0 and *until_ms
 * the binding's expiry for a vendor account bound to it; TL_ENOTFOUND for a vendor account
 * that is not bound to it, or no longer (no ticket is bound when it does not exist). until_ms
 * may be NULL. The account's own expiry is checked at
 * login and before each command (relay/desk/users.h), not here.
 */
int tl_vendor_ticket_access(tl_store_t *store, int role, const char *user, int64_t ticket_id,
                            int64_t now_ms, int64_t *until_ms);

#endif
