/*
 * ticket export T-N: the ticket's evidence bundle (proto/bundle.h, docs/desk.md "Vendor hand-off
 * and evidence bundles") as a ustar archive on stdout: `ssh relay ticket export T-4 > T-4.tar`.
 * `audit export --ticket T-N` makes the same bundle for auditors, recorded as "audit.export".
 *
 * First the relay is asked for a checkpoint that covers every entry written so far (relay/store/
 * audit_checkpoint.h), so the bundle's audit part (docs/audit-format.md §19) proves them all.
 * Then it runs in four phases of storage jobs (each job's work says which phase comes next), so the
 * loop never waits on the disk and no item is held in memory whole:
 *
 *   prepare  reads the ticket, its timeline, history and evidence list; writes timeline.json
 *            and MANIFEST and signs it with the relay's key (with --json, only says what the
 *            bundle would hold);
 *   verify   reads every evidence item through and checks it against its SHA-256, a step at a
 *            time: a damaged item refuses the export before the first byte is sent;
 *   record   puts ticket.exported on the timeline and ticket.export in the audit log, which
 *            must hold it before anything leaves (fail closed);
 *   stream   one chunk of the archive per job, paced by the technician's reading: headers, the
 *            small files from memory, the items from the evidence store (checked again as they
 *            pass), padding, the two end blocks.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/array.h"
#include "proto/bundle.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/tar.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/cmd/verify_script.h"
#include "relay/desk/retention.h"
#include "relay/desk/timeline.h"
#include "relay/store/audit_query.h"

#include <stdlib.h>
#include <string.h>

/* timeline.json is built in memory: at most this much. */
#define EXPORT_TIMELINE_MAX (64u * 1024u * 1024u)

enum part_kind { PART_FOLDER, PART_BYTES, PART_EVIDENCE };

/* One entry of the archive. */
struct part {
    enum part_kind kind;
    char name[TL_TAR_NAME_MAX + 1]; /* in the archive: "T-4/evidence/0001-..." */
    const uint8_t *bytes;           /* PART_BYTES: the export's own memory */
    uint64_t size;
    int64_t mtime_s;
    char hash[TL_SHA256_HEX_LEN]; /* PART_EVIDENCE: its name in the evidence store */
};

enum phase { PREPARE, VERIFY, RECORD, STREAM, CLOSE };
/* Where the stream is within the current part. */
enum stage { HEADER, CONTENT, PADDING };

struct export
{
    tl_job_t job; /* first: the job is the export */
    struct cmd *cmd;
    const char *action; /* its audit entry's: "ticket.export" or "audit.export" */
    enum phase phase;
    int in_flight;           /* loop only */
    tl_audit_export_t audit; /* the audit part: entries, proofs, checkpoint, key */
    /* What prepare made (the worker writes, the loop reads after the job). */
    struct part *parts;
    size_t part_count, part_cap;
    char *manifest, *pem, *timeline;
    size_t manifest_len, pem_len, timeline_len;
    uint8_t signature[TL_BUNDLE_SIGNATURE_LEN];
    char manifest_hash[TL_SHA256_HEX_LEN];
    size_t items;
    uint64_t total; /* bytes of the whole archive */
    /* Where verify or stream is. */
    size_t index;
    enum stage stage;
    uint64_t offset; /* within the part's content, or its padding */
    size_t end_left; /* stream: end blocks still to send, once every part is out */
    tl_evidence_reader_t *reader;
    /* A job's output for the loop: chunk to stdout; out or err text; and how it ends. */
    uint8_t *chunk;
    size_t chunk_len;
    char *out, *err;
    size_t out_len, err_len;
    int finished; /* the command is answered after this job */
    int exit_status;
};

static int add_part(struct export *export, enum part_kind kind, const char *name, const void *bytes,
                    uint64_t size, int64_t mtime_s, const char *hash)
{
    int rc = tl_array_grow(&export->parts, &export->part_cap, export->part_count + 1,
                           sizeof *export->parts, 16, TL_BUNDLE_MAX_ITEMS + 16);
    if (rc != 0)
        return rc;
    struct part *part = &export->parts[export->part_count];
    part->kind = kind;
    if (tl_format(part->name, sizeof part->name, "%s", name) != 0)
        return TL_EINVAL;
    part->bytes = bytes;
    part->size = size;
    part->mtime_s = mtime_s;
    if (hash != NULL)
        memcpy(part->hash, hash, TL_SHA256_HEX_LEN);
    export->part_count++;
    uint64_t entry = TL_TAR_BLOCK + size + tl_tar_padding(size);
    export->total += entry;
    return 0;
}

static void export_free(struct export *export)
{
    if (export == NULL)
        return;
    tl__cmd_free(export->cmd);
    free(export->parts);
    free(export->manifest);
    free(export->pem);
    free(export->timeline);
    tl_audit_export_release(&export->audit);
    free(export->chunk);
    free(export->out);
    free(export->err);
    free(export);
}

/* ---- prepare -------------------------------------------------------------------------------- */

/* The ticket's history of changes, as timeline.json holds it. */
static json_t *changes_array(tl_store_t *store, int64_t ticket_id)
{
    tl_ticket_change_rows_t rows;
    if (tl_store_ticket_changes_read(store, ticket_id, &rows) != 0)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < rows.count; i++) {
        const tl_ticket_change_row_t *row = &rows.rows[i];
        json_t *change =
            json_pack("{s:I, s:s, s:s, s:s, s:s}", "time", (json_int_t)row->time, "field",
                      row->field, "value", row->value, "actor", row->actor, "reason", row->reason);
        if (change == NULL || json_array_append_new(list, change) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    tl_ticket_change_rows_free(&rows);
    return list;
}

/* The audit part: the entries about the ticket and its items, with their proofs. */
static int audit_part(struct export *export, json_t *listed, FILE *err)
{
    struct cmd *cmd = export->cmd;
    size_t count = json_array_size(listed), i;
    const char **hashes = calloc(count + 1, sizeof *hashes);
    json_t *item;
    char why[512];
    if (hashes == NULL)
        return TL_ENOMEM;
    json_array_foreach(listed, i, item)
        hashes[i] = tl__cmd_member(item, "sha256");
    int rc = cmd->ctx->data_dir == NULL
                 ? TL_ESTATE
                 : tl_audit_export_ticket(cmd->ctx->data_dir, cmd->ticket.text, hashes, count,
                                          &export->audit, why, sizeof why);
    free(hashes);
    if (rc == TL_ENOMEM)
        return rc;
    if (rc != 0) {
        fprintf(err, "tierline: the audit part of the bundle of %s cannot be made: %s\n",
                cmd->ticket.text, cmd->ctx->data_dir == NULL ? "no audit log" : why);
        return TL_EINVAL; /* said */
    }
    return 0;
}

/*
 * The parts of the archive and its three files, from the ticket t (tl_rows_ticket's object,
 * taken apart here). Says what went wrong on err.
 */
/*
 * The facts of hash's tombstone when the ticket's timeline says it was pruned (retention, docs/
 * audit-format.md §22) and the payload is gone: its "evidence.pruned" event's details (class,
 * policy, pruned, ...). NULL when it is there, whatever the timeline says: what is present goes in
 * the bundle and is checked.
 */
static json_t *pruned_item(tl_job_ctx_t *ctx, json_t *events, const char *hash)
{
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event) {
        json_t *details = json_object_get(event, "details");
        if (strcmp(tl__cmd_member(event, "kind"), TL_RETENTION_EVENT_PRUNED) == 0 &&
            strcmp(tl__cmd_member(details, "sha256"), hash) == 0)
            return tl_evidence_exists(ctx->evidence, hash) == 0 ? json_deep_copy(details) : NULL;
    }
    return NULL;
}

static int build(struct export *export, tl_job_ctx_t *ctx, json_t *t, FILE *err)
{
    struct cmd *cmd = export->cmd;
    int64_t now = tl_wall_ms(), now_s = now / 1000;
    char actor[96], key_fingerprint[TL_FINGERPRINT_LEN] = "", folder[TL_ID_TEXT + 1], name[256],
                    id[TL_ID_TEXT];
    json_t *evidence = json_incref(json_object_get(t, "evidence"));
    json_t *events = json_incref(json_object_get(t, "events"));
    json_t *doc = NULL, *listed = json_array();
    tl_buf_t *manifest = tl_buf_new(TL_BUNDLE_MANIFEST_MAX);
    int rc = TL_ENOMEM;
    size_t items = json_array_size(evidence);
    if (items > TL_BUNDLE_MAX_ITEMS) {
        fprintf(err, "tierline: %s holds %zu evidence items, more than a bundle holds (%d)\n",
                cmd->ticket.text, items, TL_BUNDLE_MAX_ITEMS);
        rc = TL_EFULL;
        goto out;
    }
    if (manifest == NULL || listed == NULL)
        goto out;
    tl__cmd_actor(cmd, actor);
    tl_fingerprint(cmd->ctx->bundle_key, key_fingerprint);
    tl_format(folder, sizeof folder, "%s/", tl_id_format(id, TL_ID_TICKET, cmd->ticket.id));
    json_object_del(t, "evidence");
    json_object_del(t, "events");
    /* Each item's path, which timeline.json names too. */
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item) {
        char path[TL_BUNDLE_PATH_MAX + 1];
        json_int_t size = json_integer_value(json_object_get(item, "size"));
        const char *hash = tl__cmd_member(item, "hash");
        if ((rc = tl_bundle_evidence_path(i + 1, tl__cmd_member(item, "kind"),
                                          tl__cmd_member(item, "name"), path, sizeof path)) != 0)
            goto out;
        if (!tl_sha256_hex_valid(hash) || size < 0 || (uint64_t)size > TL_TAR_SIZE_MAX) {
            fprintf(err, "tierline: evidence %s on %s cannot go in a bundle (%s)\n", hash,
                    cmd->ticket.text,
                    tl_sha256_hex_valid(hash) ? "larger than 8 GiB" : "not a SHA-256 name");
            rc = TL_EINVAL;
            goto out;
        }
        /* A payload pruned by retention is listed with its tombstone's facts, and no file. */
        json_t *pruned = pruned_item(ctx, events, hash);
        json_t *entry =
            json_pack("{s:s, s:O, s:O, s:I, s:O}", "sha256", hash, "kind",
                      json_object_get(item, "kind"), "name", json_object_get(item, "name"), "size",
                      size, "created", json_object_get(item, "created"));
        if (entry != NULL)
            json_object_set_new(entry, pruned != NULL ? "pruned" : "path",
                                pruned != NULL ? pruned : json_string(path));
        if (entry == NULL || json_array_append_new(listed, entry) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    doc = json_pack("{s:s, s:O, s:O, s:o?, s:O, s:{s:I, s:s, s:s}}", "format", TL_BUNDLE_FORMAT,
                    "ticket", t, "events", events, "changes",
                    changes_array(ctx->store, cmd->ticket.id), "evidence", listed, "exported",
                    "time", (json_int_t)now, "by", actor, "relay_key", key_fingerprint);
    if (doc == NULL || !json_is_array(json_object_get(doc, "changes")) ||
        (export->timeline = tl_text_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ==
            NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    export->timeline_len = strlen(export->timeline) + 1;
    export->timeline[export->timeline_len - 1] = '\n'; /* the NUL becomes the last line's end */
    if (export->timeline_len > EXPORT_TIMELINE_MAX) {
        fprintf(err, "tierline: the timeline of %s is %zu bytes, more than a bundle holds (%u)\n",
                cmd->ticket.text, export->timeline_len, EXPORT_TIMELINE_MAX);
        rc = TL_EFULL;
        goto out;
    }
    if ((rc = audit_part(export, listed, err)) != 0)
        goto out;
    /* MANIFEST: timeline.json, the audit part, then every item. */
    const struct part extra[] = {
        {.name = TL_BUNDLE_TIMELINE,
         .bytes = (const uint8_t *)export->timeline,
         .size = export->timeline_len},
        {.name = TL_BUNDLE_AUDIT_ENTRIES,
         .bytes = (const uint8_t *)export->audit.entries,
         .size = export->audit.entries_len},
        {.name = TL_BUNDLE_AUDIT_PROOFS,
         .bytes = (const uint8_t *)export->audit.proofs,
         .size = export->audit.proofs_len},
        {.name = TL_BUNDLE_AUDIT_CHECKPOINT,
         .bytes = (const uint8_t *)export->audit.checkpoint,
         .size = export->audit.checkpoint_len},
        {.name = TL_BUNDLE_AUDIT_KEY,
         .bytes = (const uint8_t *)export->audit.vkey,
         .size = export->audit.vkey_len},
        {.name = TL_BUNDLE_VERIFIER, .bytes = tl_verify_script, .size = tl_verify_script_len},
    };
    for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) {
        char hash[TL_SHA256_HEX_LEN];
        if ((rc = tl_sha256_hex(extra[e].bytes, (size_t)extra[e].size, hash)) != 0 ||
            (rc = tl_bundle_manifest_add(manifest, hash, extra[e].name)) != 0)
            goto out;
    }
    json_array_foreach(listed, i, item) {
        if (json_object_get(item, "path") == NULL)
            continue;
        if ((rc = tl_bundle_manifest_add(manifest, tl__cmd_member(item, "sha256"),
                                         tl__cmd_member(item, "path"))) != 0)
            goto out;
    }
    if ((rc = tl_bundle_sign(cmd->ctx->bundle_key, tl_buf_data(manifest), tl_buf_len(manifest),
                             export->signature)) != 0 ||
        (rc = tl_bundle_key_pem(cmd->ctx->bundle_key, &export->pem, &export->pem_len)) != 0 ||
        (rc = tl_buf_take_string(manifest, &export->manifest, &export->manifest_len)) != 0 ||
        (rc = tl_sha256_hex(export->manifest, export->manifest_len, export->manifest_hash)) != 0)
        goto out;
        /* The archive: the folder and its three files, timeline.json, verify_bundle.py, audit/
         * and its four files (extra[1..4]), the items' folders and the items. */
#define NAMED(path) (tl_format(name, sizeof name, "%s%s", folder, (path)) == 0 ? name : "")
    if ((rc = add_part(export, PART_FOLDER, folder, NULL, 0, now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_BYTES, NAMED(TL_BUNDLE_MANIFEST), export->manifest,
                       export->manifest_len, now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_BYTES, NAMED(TL_BUNDLE_SIGNATURE), export->signature,
                       sizeof export->signature, now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_BYTES, NAMED(TL_BUNDLE_KEY), export->pem, export->pem_len,
                       now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_BYTES, NAMED(TL_BUNDLE_TIMELINE), export->timeline,
                       export->timeline_len, now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_BYTES, NAMED(TL_BUNDLE_VERIFIER), tl_verify_script,
                       tl_verify_script_len, now_s, NULL)) != 0 ||
        (rc = add_part(export, PART_FOLDER, NAMED("audit/"), NULL, 0, now_s, NULL)) != 0)
        goto out;
    for (size_t e = 1; e <= 4; e++)
        if ((rc = add_part(export, PART_BYTES, NAMED(extra[e].name), extra[e].bytes, extra[e].size,
                           now_s, NULL)) != 0)
            goto out;
    static const char *const folders[] = {"evidence/", "recordings/"};
    for (size_t f = 0; f < 2; f++) {
        int any = 0;
        json_array_foreach(listed, i, item) {
            const char *path = tl__cmd_member(item, "path");
            if (json_object_get(item, "path") == NULL ||
                strncmp(path, folders[f], strlen(folders[f])) != 0)
                continue;
            if (!any++ &&
                (rc = add_part(export, PART_FOLDER, NAMED(folders[f]), NULL, 0, now_s, NULL)) != 0)
                goto out;
            if ((rc = add_part(export, PART_EVIDENCE, NAMED(path), NULL,
                               (uint64_t)json_integer_value(json_object_get(item, "size")),
                               json_integer_value(json_object_get(item, "created")) / 1000,
                               tl__cmd_member(item, "sha256"))) != 0)
                goto out;
        }
    }
#undef NAMED
    export->items = items;
    export->total += TL_TAR_END_LEN;
    rc = 0;
out:
    if (rc == TL_ENOMEM)
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    else if (rc != 0 && rc != TL_EFULL && rc != TL_EINVAL)
        fprintf(err, "tierline: the bundle of %s cannot be made: %s\n", cmd->ticket.text,
                tl_strerror(rc));
    json_decref(doc);
    json_decref(listed);
    json_decref(evidence);
    json_decref(events);
    tl_buf_free(manifest);
    return rc;
}

/* --json: what the bundle would hold, and nothing is sent or recorded. */
static void print_summary(struct export *export, FILE *out)
{
    char fingerprint[TL_FINGERPRINT_LEN] = "";
    tl_fingerprint(export->cmd->ctx->bundle_key, fingerprint);
    json_t *files = json_array();
    for (size_t i = 0; files != NULL && i < export->part_count; i++) {
        const struct part *part = &export->parts[i];
        if (part->kind == PART_FOLDER)
            continue;
        json_t *file = json_pack("{s:s, s:I}", "path", part->name, "size", (json_int_t)part->size);
        if (file != NULL && part->kind == PART_EVIDENCE)
            json_object_set_new(file, "sha256", json_string(part->hash));
        json_array_append_new(files, file);
    }
    json_t *summary = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "ticket", export->cmd->ticket.text, "key",
        fingerprint, "manifest_sha256", export->manifest_hash, "items", (json_int_t) export->items,
        "audit_entries", (json_int_t) export->audit.count, "tree_size",
        (json_int_t) export->audit.tree_size, "bytes", (json_int_t) export->total, "files", files);
    tl__cmd_print_json(out, summary);
    json_decref(summary);
}

static int work_prepare(struct export *export, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    struct cmd *cmd = export->cmd;
    json_t *t = NULL;
    if (cmd->ctx->bundle_key == NULL) {
        fprintf(err, "tierline: this relay has no key to sign bundles with\n");
        return TL_EKEY;
    }
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc == 0)
        rc = build(export, ctx, t, err);
    json_decref(t);
    if (rc == 0 && cmd->json) {
        print_summary(export, out);
        export->finished = 1;
    }
    export->phase = VERIFY;
    return rc;
}

/* ---- verify --------------------------------------------------------------------------------- */

/* The next evidence part from index on; part_count when there is none. */
static size_t next_item(const struct export *export, size_t index)
{
    while (index < export->part_count && export->parts[index].kind != PART_EVIDENCE)
        index++;
    return index;
}

/* Audits the export's outcome: "ok" once everything is checked, "failed" with why. */
static int audit_outcome(struct export *export, tl_job_ctx_t *ctx, const char *outcome,
                         const char *why)
{
    char actor[96];
    tl__cmd_actor(export->cmd, actor);
    json_t *details =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "outcome", outcome, "manifest_sha256",
                  export->manifest_hash, "items", (json_int_t) export->items, "audit_entries",
                  (json_int_t) export->audit.count, "tree_size",
                  (json_int_t) export->audit.tree_size, "bytes", (json_int_t) export->total);
    if (details != NULL && why != NULL)
        json_object_set_new(details, "reason", json_string(why));
    int rc = TL_ENOMEM;
    if (details != NULL && strcmp(outcome, "ok") == 0) {
        /* On the timeline too: the next tier sees who took the ticket's evidence away. */
        tl_timeline_entry_t entry = {.ticket_id = export->cmd->ticket.id,
                                     .time_ms = tl_wall_ms(),
                                     .actor = actor,
                                     .event = "ticket.exported",
                                     .action = export->action,
                                     .details = details};
        rc = tl_timeline_record(ctx, &entry);
    } else if (details != NULL) {
        rc = tl_worker_audit(ctx, actor, export->action, export->cmd->ticket.text, details);
    }
    json_decref(details);
    return rc;
}

static int work_verify(struct export *export, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    uint64_t budget = TL_EVIDENCE_VERIFY_STEP;
    export->index = next_item(export, export->index);
    while (export->index < export->part_count && budget > 0) {
        const struct part *part = &export->parts[export->index];
        bool verified = false;
        int rc = export->reader != NULL
                     ? 0
                     : tl_evidence_open(ctx->evidence, part->hash, &export->reader);
        if (rc == 0)
            rc = tl_evidence_verify_step(export->reader, budget, &verified);
        budget = budget > part->size ? budget - part->size : 0; /* roughly: one step per job */
        if (rc != 0) {
            /* A copy: the reader's words go with the reader. */
            char why[256];
            snprintf(why, sizeof why, "%s",
                     export->reader != NULL && tl_evidence_reader_problem(export->reader)[0]
                         ? tl_evidence_reader_problem(export->reader)
                         : tl_strerror(rc));
            fprintf(err,
                    "tierline: evidence %s on %s is %s (%s): nothing was sent; an administrator "
                    "can list damaged items with `tierline-relay evidence verify`\n",
                    part->hash, export->cmd->ticket.text,
                    rc == TL_EDAMAGED ? "damaged" : "unreadable", why);
            tl_evidence_close(export->reader);
            export->reader = NULL;
            export->finished = 1;
            export->cmd->refused = 1;
            return audit_outcome(export, ctx, "failed", why);
        }
        if (!verified)
            return 0; /* this item again, next job */
        tl_evidence_close(export->reader);
        export->reader = NULL;
        export->index = next_item(export, export->index + 1);
    }
    if (export->index >= export->part_count)
        export->phase = RECORD;
    return 0;
}

static int work_record(struct export *export, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    int rc = audit_outcome(export, ctx, "ok", NULL);
    if (rc != 0)
        fprintf(err, "tierline: the export of %s cannot be recorded: %s; nothing was sent\n",
                export->cmd->ticket.text, tl_strerror(rc));
    export->phase = STREAM;
    export->index = 0;
    export->stage = HEADER;
    export->offset = 0;
    export->end_left = TL_TAR_END_LEN;
    return rc;
}

/* ---- stream --------------------------------------------------------------------------------- */

/* Fills the chunk with the next bytes of the archive; *done once the end blocks are in. */
static int fill(struct export *export, tl_job_ctx_t *ctx, int *done)
{
    static const uint8_t zeros[TL_TAR_BLOCK];
    uint8_t *chunk = export->chunk;
    size_t room = TL_EVIDENCE_CHUNK;
    export->chunk_len = 0;
    while (room > 0) {
        if (export->index >= export->part_count) {
            size_t take = export->end_left < room ? export->end_left : room;
            memset(chunk + export->chunk_len, 0, take);
            export->chunk_len += take;
            export->end_left -= take;
            room -= take;
            *done = export->end_left == 0;
            return 0;
        }
        struct part *part = &export->parts[export->index];
        if (export->stage == HEADER) {
            if (room < TL_TAR_BLOCK)
                return 0;
            tl_tar_entry_t entry = {.type =
                                        part->kind == PART_FOLDER ? TL_TAR_DIRECTORY : TL_TAR_FILE,
                                    .size = part->size,
                                    .mtime = part->mtime_s,
                                    .mode = part->kind == PART_FOLDER ? 0755 : 0644};
            memcpy(entry.name, part->name, sizeof entry.name);
            int rc = tl_tar_header_write(&entry, chunk + export->chunk_len);
            if (rc != 0)
                return rc;
            export->chunk_len += TL_TAR_BLOCK;
            room -= TL_TAR_BLOCK;
            export->stage = CONTENT;
            export->offset = 0;
        }
        if (export->stage == CONTENT && export->offset < part->size) {
            size_t take =
                part->size - export->offset < room ? (size_t)(part->size - export->offset) : room;
            if (part->kind == PART_BYTES) {
                memcpy(chunk + export->chunk_len, part->bytes + export->offset, take);
            } else {
                int rc = export->reader != NULL
                             ? 0
                             : tl_evidence_open(ctx->evidence, part->hash, &export->reader);
                size_t got = 0;
                if (rc == 0)
                    rc = tl_evidence_read(export->reader, chunk + export->chunk_len, take, &got);
                if (rc == 0 && got == 0)
                    rc = TL_EDAMAGED; /* shorter than listed */
                if (rc != 0)
                    return rc;
                take = got;
            }
            export->chunk_len += take;
            export->offset += take;
            room -= take;
            continue;
        }
        if (export->stage == CONTENT) {
            /* Read to the end, where the reader checks the whole against the hash again. */
            if (export->reader != NULL) {
                uint8_t extra;
                size_t got = 0;
                int rc = tl_evidence_read(export->reader, &extra, 1, &got);
                int close_rc = tl_evidence_close(export->reader);
                export->reader = NULL;
                if (rc == 0 && got != 0)
                    rc = TL_EDAMAGED; /* longer than listed */
                if (rc != 0 || close_rc != 0)
                    return rc != 0 ? rc : close_rc;
            }
            export->stage = PADDING;
            export->offset = 0;
        }
        size_t padding = tl_tar_padding(part->size) - (size_t) export->offset;
        size_t take = padding < room ? padding : room;
        memcpy(chunk + export->chunk_len, zeros, take);
        export->chunk_len += take;
        export->offset += take;
        room -= take;
        if (take == padding) {
            export->index++;
            export->stage = HEADER;
            export->offset = 0;
        }
    }
    return 0;
}

static int work_stream(struct export *export, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    int done = 0;
    int rc = fill(export, ctx, &done);
    if (rc != 0) {
        /* Changed since it was checked: the technician must not take part of it for whole. */
        fprintf(err, "tierline: %s: the bundle is incomplete: %s (%s)\n", export->cmd->ticket.text,
                export->index < export->part_count ? export->parts[export->index].name : "",
                tl_strerror(rc));
        export->chunk_len = 0;
        export->finished = 1;
        export->exit_status = 1;
        return 0;
    }
    if (done)
        export->finished = 1;
    return 0;
}

/* ---- the jobs ------------------------------------------------------------------------------- */

static void submit(struct export *export);

static int run_job(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct export *export = (struct export *)job;
    if (export->phase == CLOSE) {
        tl_evidence_close(export->reader);
        export->reader = NULL;
        return 0;
    }
    free(export->out);
    free(export->err);
    export->out = export->err = NULL;
    export->out_len = export->err_len = 0;
    FILE *out = open_memstream(&export->out, &export->out_len);
    FILE *err = open_memstream(&export->err, &export->err_len);
    int rc = TL_ENOMEM;
    if (out != NULL && err != NULL) {
        switch (export->phase) {
        case PREPARE:
            rc = work_prepare(export, ctx, out, err);
            break;
        case VERIFY:
            rc = work_verify(export, ctx, out, err);
            break;
        case RECORD:
            rc = work_record(export, ctx, out, err);
            break;
        default:
            rc = work_stream(export, ctx, out, err);
            break;
        }
    }
    if (out != NULL)
        fclose(out);
    if (err != NULL)
        fclose(err);
    if (rc != 0 || export->cmd->refused) {
        export->finished = 1;
        export->exit_status = 1;
    }
    if (rc == TL_ENOMEM || rc == TL_ESTORE)
        return rc;
    /* A refusal keeps its audit entry; any other failure undoes what the job did. */
    return rc == 0 || export->cmd->refused ? 0 : TL_EINVAL;
}

/* The client is gone, or the command is answered: the reader goes on the worker, then all. */
static void release(struct export *export)
{
    if (export->reader != NULL) {
        export->phase = CLOSE;
        submit(export);
        return;
    }
    export_free(export);
}

static void job_done(tl_job_t *job, int status)
{
    struct export *export = (struct export *)job;
    struct cmd *cmd = export->cmd;
    export->in_flight = 0;
    if (export->phase == CLOSE) {
        export_free(export);
        return;
    }
    if (cmd->exec == NULL) {
        release(export);
        return;
    }
    if (status == TL_EAUDIT) /* not on the record: whatever the job made is withheld */
        export->out_len = export->err_len = export->chunk_len = 0;
    if (export->chunk_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, export->chunk, export->chunk_len);
    if (export->out_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, export->out, export->out_len);
    if (export->err_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDERR, export->err, export->err_len);
    if (status != 0 && export->err_len == 0)
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(status));
    if (status != 0 || export->finished) {
        tl_exec_finish(cmd->exec, status != 0 ? 1 : export->exit_status);
        cmd->exec = NULL;
        release(export);
        return;
    }
    /* Each phase's work says which comes next. */
    if (export->phase == STREAM && export->chunk == NULL &&
        (export->chunk = malloc(TL_EVIDENCE_CHUNK)) == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(cmd->exec, 1);
        cmd->exec = NULL;
        release(export);
        return;
    }
    /* Streaming waits for the technician to read what is queued (on_drain). */
    if (export->phase != STREAM || tl_exec_buffered(cmd->exec) < TL_EXEC_HIGH_WATER)
        submit(export);
}

static void submit(struct export *export)
{
    export->job.run = run_job;
    export->job.done = job_done;
    export->in_flight = 1;
    tl_worker_submit(export->cmd->ctx->worker, &export->job);
}

static void on_drain(tl_exec_t *exec, void *data)
{
    struct export *export = data;
    if (!export->in_flight && export->phase == STREAM)
        submit(export);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct export *export = data;
    export->cmd->exec = NULL;
    if (!export->in_flight)
        release(export); /* otherwise its done callback sees the exec is gone */
}

static const tl_exec_callbacks_t export_callbacks = {.on_drain = on_drain, .on_abort = on_abort};

/* The checkpoint asked for at the start: the bundle's proofs lead to it (or a later one). */
static void on_checkpoint(void *data, int status, const tl_checkpoint_t *checkpoint,
                          const char *note)
{
    struct export *export = data;
    (void)checkpoint;
    (void)note;
    export->in_flight = 0;
    if (export->cmd->exec == NULL) {
        release(export);
        return;
    }
    if (status != 0) {
        /* Fail closed: without a checkpoint the entries could not be proved. */
        tl_exec_printf(export->cmd->exec, TL_EXEC_STDERR,
                       "tierline: the audit log cannot be checkpointed (%s); nothing was sent\n",
                       tl_strerror(status));
        tl_exec_finish(export->cmd->exec, 1);
        export->cmd->exec = NULL;
        release(export);
        return;
    }
    submit(export);
}

static void start(struct cmd *cmd, const char *action)
{
    struct export *export = calloc(1, sizeof *export);
    if (export == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(cmd->exec, 1);
        tl__cmd_free(cmd);
        return;
    }
    export->cmd = cmd;
    export->action = action;
    export->phase = PREPARE;
    tl_exec_set_callbacks(cmd->exec, &export_callbacks, export);
    if (cmd->ctx->checkpoints == NULL) {
        submit(export);
        return;
    }
    export->in_flight = 1;
    int rc = tl_audit_checkpoints_request(cmd->ctx->checkpoints, on_checkpoint, export);
    if (rc != 0)
        on_checkpoint(export, rc, NULL, NULL);
}

static void start_ticket_export(struct cmd *cmd)
{
    start(cmd, "ticket.export");
}

static void start_audit_export(struct cmd *cmd)
{
    start(cmd, "audit.export");
}

static int audit_export_prepare(struct cmd *cmd)
{
    if (cmd->ticket.text[0] == '\0') {
        cmd->usage_error = "--ticket T-N is required";
        return TL_EINVAL;
    }
    return 0;
}

const struct tl__command tl__cmd_ticket_export = {
    .name = "ticket export",
    .usage = "ticket export T-N [--json] > T-N.tar",
    .summary = "the ticket's evidence bundle, signed by the relay, as a tar archive on stdout",
    .capability = TL_CAP_EVIDENCE_GET,
    .args = {.options =
                 (const tl_cli_arg_t[]){TL__CMD_JSON("no archive: what it would hold, an object: "
                                                     "ticket, key, manifest_sha256, items, bytes, "
                                                     "files (each: path, size, sha256 of an item)"),
                                        {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .start = start_ticket_export,
    .example = "ticket export T-4 > T-4.tar\n",
};

const struct tl__command tl__cmd_audit_export = {
    .name = "audit export",
    .usage = "audit export --ticket T-N [--json] > T-N.tar",
    .summary = "the ticket's bundle as ticket export makes it: its audit entries with inclusion "
               "proofs, checkpoint, audit key, recordings, evidence and verify_bundle.py",
    .capability = TL_CAP_AUDIT_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){{.name = "ticket",
                                         .metavar = "T-N",
                                         .help = "the ticket whose bundle to make",
                                         .kind = TL_CLI_CHECK,
                                         .check = tl__kind_ticket,
                                         .out = TL_CLI_AT(struct cmd, ticket),
                                         .problem = "--ticket wants a ticket id such as T-42, "
                                                    "not '%s'"},
                                        TL__CMD_JSON("no archive: what it would hold, as "
                                                     "ticket export --json says it"),
                                        {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = audit_export_prepare,
    .start = start_audit_export,
    .example = "audit export --ticket T-4 > T-4.tar\n",
};
