/*
 * The web view's pages (docs/web.md "Pages"): the JSON answers of the technicians' commands
 * (their --json) made HTML. Bytes in, bytes out: no I/O, no state, so each page is testable on
 * its own. Every text that came from another party goes through tl_text_html() (proto/text.h)
 * on its way into the page, whether element text or attribute value; the markup around it is
 * ours. Pages load /static/tierline.css and, where they need it, /static/tierline.js: no inline
 * script anywhere (the Content-Security-Policy forbids it).
 *
 * Each function appends one whole page to out (capped at TL_WEB_PAGE_MAX) and returns 0,
 * TL_EFULL or TL_ENOMEM. who is the signed-in technician (NULL: nobody, for the sign-in
 * messages).
 */
#ifndef TL_WEB_PAGES_H
#define TL_WEB_PAGES_H

#include "proto/buf.h"
#include "relay/desk/users.h"

#include <jansson.h>

#define TL_WEB_PAGE_MAX (8u * 1024 * 1024)

/* A title and one paragraph. */
int tl_web_page_message(tl_buf_t *out, const tl_technician_t *who, const char *title,
                        const char *text);
/* The queues: tickets --json ({notices, tickets}); tier is what was asked for (NULL: own). */
int tl_web_page_tickets(tl_buf_t *out, const tl_technician_t *who, json_t *answer,
                        const char *tier);
/* One ticket: ticket show --json. */
int tl_web_page_ticket(tl_buf_t *out, const tl_technician_t *who, json_t *ticket);
/* A recording in the player, from /cast/SESSION. */
int tl_web_page_replay(tl_buf_t *out, const tl_technician_t *who, const char *session);
/* The audit log: audit search --json, and audit verify --json (NULL: not known). */
int tl_web_page_audit(tl_buf_t *out, const tl_technician_t *who, json_t *search, json_t *verify);
/* The desk's report (report --json), with its charts as SVG. */
int tl_web_page_report(tl_buf_t *out, const tl_technician_t *who, json_t *report);

#endif
