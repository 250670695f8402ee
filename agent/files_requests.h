/*
 * files.stat and files.list, the relay's requests about a machine's files
 * under a grant with scope `files` (docs/protocol.md §7.16): each checked
 * against its grant (agent/consent.h) and served by agent/files.h, which
 * refuses links on the path, whatever the relay asked.
 */
#ifndef TL_AGENT_FILES_REQUESTS_H
#define TL_AGENT_FILES_REQUESTS_H

#include "agent/consent.h"
#include "proto/vocab.h"

#include <jansson.h>

/* Entries of one listing, and the bytes of its answer, so that it fits one frame. */
#define TL_FILES_LIST_MAX 4096u
#define TL_FILES_LIST_MAX_BYTES (192u * 1024u)

/*
 * The result body (new reference; NULL only out of memory) for a request of
 * type TL_CONTROL_FILES_STAT or TL_CONTROL_FILES_LIST: {"ok":true,"attrs":{...}}
 * or {"ok":true,"entries":[...],"more":false}, or {"ok":false,"error":...,
 * "message":...}. consent may be NULL (the agent takes no sessions now).
 */
json_t *tl_files_request_answer(const tl_consent_t *consent, enum tl_control_type type,
                                json_t *body);
/*
 * The same in two steps, so that the file system is read off the event loop: the check
 * against the grant (on the loop; NULL when the request may be served, else the refusal), then
 * the stat or listing of path (any thread; touches nothing but the file system).
 */
json_t *tl_files_request_check(const tl_consent_t *consent, json_t *body);
json_t *tl_files_request_serve(enum tl_control_type type, const char *path);

#endif
